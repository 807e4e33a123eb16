"""Every way of running abowerk starts it with the same commands, in the same order.

The README lists the processes (`## Production`); `scripts/run`, the image, compose, the
Kubernetes manifests and the systemd units must start exactly those: migrate with
`abowerk db upgrade` before serving, serve with gunicorn, `deploy/gunicorn.conf.py` and
`saas.wsgi:app`, and run the workers with `abowerk worker [--no-periodic]`.

Each file is parsed as its tool reads it; programs are compared by name (`.venv/bin/abowerk`,
`/opt/abowerk/venv/bin/abowerk` and `abowerk` on the image's PATH are one program), and a
configuration file installed elsewhere (the image's COPY, the VM's `install` step in
docs/operations.md) is traced back to the repository file it was copied from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.files import (
    DEPLOY,
    OPERATIONS,
    ROOT,
    all_shell_commands,
    compose,
    dockerfile_instructions,
    exec_form,
    k8s_objects,
    script_commands,
    shell_blocks,
    systemd_unit,
)

GUNICORN_CONF = "deploy/gunicorn.conf.py"
MIGRATE = ("abowerk", "db", "upgrade")
WEB = ("gunicorn", "-c", GUNICORN_CONF, "saas.wsgi:app")
SCHEDULER = ("abowerk", "worker")
WORKER = ("abowerk", "worker", "--no-periodic")

Command = tuple[str, ...]


def _normalize(argv: list[str], installed: dict[str, str] | None = None) -> Command:
    """The program by name; paths of installed copies replaced by their repository file."""
    installed = installed or {}
    return (Path(argv[0]).name, *(installed.get(arg, arg) for arg in argv[1:]))


def _image_copies() -> dict[str, str]:
    """Destination in the image -> source in the repository, from the Dockerfile's COPYs."""
    copies = {}
    for keyword, args in dockerfile_instructions(DEPLOY / "Dockerfile"):
        words = exec_form(args)
        if keyword != "COPY" or any(w.startswith("--from") for w in words):
            continue
        *sources, destination = words
        for source in sources:
            copies[destination] = source
    return copies


def _vm_installs() -> dict[str, str]:
    """Destination on the VM -> repository file, from the `install` steps of operations.md."""
    installs = {}
    for words in all_shell_commands(OPERATIONS.read_text()):
        if words[0] != "install" or "-d" in words:
            continue
        *sources, destination = [w for w in words[1:] if not w.startswith("-") and w != "0644"]
        for source in sources:
            if source.endswith(GUNICORN_CONF):
                installs[destination] = GUNICORN_CONF
    return installs


def _readme_commands() -> list[Command]:
    return [_normalize(w) for w in shell_blocks((ROOT / "README.md").read_text(), "Production")]


def _image_cmd() -> Command:
    cmds = [
        args for keyword, args in dockerfile_instructions(DEPLOY / "Dockerfile") if keyword == "CMD"
    ]
    assert not any(k == "ENTRYPOINT" for k, _ in dockerfile_instructions(DEPLOY / "Dockerfile"))
    return _normalize(exec_form(cmds[-1]), _image_copies())


def test_readme_lists_migrate_web_scheduler_and_workers_in_that_order() -> None:
    assert _readme_commands() == [MIGRATE, WEB, SCHEDULER, WORKER]


def test_scripts_run_migrates_then_serves_like_the_readme_when_started() -> None:
    commands = [_normalize(w) for w in script_commands(ROOT / "scripts" / "run")]
    assert MIGRATE in commands
    assert commands[-1] == WEB  # exec'd last: gunicorn replaces the script
    assert commands.index(MIGRATE) < commands.index(WEB)


def test_image_serves_with_the_readmes_web_command_when_run() -> None:
    assert _image_cmd() == WEB
    # the configuration file the command names is in the image, from the repository
    assert (ROOT / GUNICORN_CONF).is_file()
    assert f"!{GUNICORN_CONF}" in (ROOT / ".dockerignore").read_text().splitlines()


def test_compose_migrates_before_serving_with_the_readmes_commands() -> None:
    services = compose()["services"]
    assert tuple(services["migrate"]["command"]) == MIGRATE
    assert "command" not in services["web"]  # the image's CMD, checked above
    assert tuple(services["scheduler"]["command"]) == SCHEDULER
    assert tuple(services["worker"]["command"]) == WORKER
    for name in ("web", "worker", "scheduler"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def _k8s_command(kind: str, name: str) -> Any:
    (container,) = k8s_objects()[(kind, name)]["spec"]["template"]["spec"]["containers"]
    assert "args" not in container
    return container.get("command")


def test_kubernetes_runs_the_readmes_commands_when_applied() -> None:
    assert tuple(_k8s_command("Job", "abowerk-migrate")) == MIGRATE
    assert _k8s_command("Deployment", "abowerk-web") is None  # the image's CMD
    assert tuple(_k8s_command("Deployment", "abowerk-scheduler")) == SCHEDULER
    assert tuple(_k8s_command("Deployment", "abowerk-worker")) == WORKER


def _exec_start(unit: str) -> Command:
    (line,) = systemd_unit(DEPLOY / unit)["Service"]["ExecStart"]
    return _normalize(line.split(), _vm_installs())


@pytest.mark.parametrize(
    ("unit", "command"),
    [
        ("abowerk-migrate.service", MIGRATE),
        ("abowerk-web.service", WEB),
        ("abowerk-scheduler.service", SCHEDULER),
        ("abowerk-worker.service", WORKER),
    ],
)
def test_systemd_unit_runs_the_readmes_command_when_started(unit: str, command: Command) -> None:
    assert _exec_start(unit) == command


@pytest.mark.parametrize(
    "unit", ["abowerk-web.service", "abowerk-scheduler.service", "abowerk-worker.service"]
)
def test_systemd_unit_starts_only_after_a_successful_migration(unit: str) -> None:
    section = systemd_unit(DEPLOY / unit)["Unit"]
    requires = " ".join(section["Requires"]).split()
    after = " ".join(section["After"]).split()
    assert "abowerk-migrate.service" in requires and "abowerk-migrate.service" in after
