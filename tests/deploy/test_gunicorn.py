"""The real server: gunicorn with deploy/gunicorn.conf.py, several worker processes.

`/metrics` must report the whole server, not the worker process that happened to answer the
scrape (multi-process mode, PROMETHEUS_MULTIPROC_DIR), and gunicorn must stop cleanly on
SIGTERM. The server runs on 127.0.0.1 only; every request loop here is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.files import DEPLOY, ROOT

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310  (our own loopback server)
        return str(resp.read().decode())


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], base: str, metrics_dir: Path) -> None:
        self.proc = proc
        self.base = base
        self.metrics_dir = metrics_dir

    def worker_pids(self) -> set[int]:
        return {int(p.stem.rsplit("_", 1)[1]) for p in self.metrics_dir.glob("gauge_livesum_*.db")}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    metrics_dir = tmp_path / "prometheus"
    env = {
        **os.environ,
        "ABOWERK_BIND": f"127.0.0.1:{port}",
        "ABOWERK_VAR_DIR": str(tmp_path / "var"),
        "ABOWERK_SECRET_KEY": "gunicorn-test-secret",
        "ABOWERK_LOG_LEVEL": "WARNING",
        "ABOWERK_TASKS_IMMEDIATE": "1",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
        "GUNICORN_LOG_LEVEL": "warning",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    env.pop("ABOWERK_DATABASE_URL", None)
    env.pop("ABOWERK_REDIS_URL", None)
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from an earlier run")
    proc = subprocess.Popen(
        [BIN / "gunicorn", "-c", DEPLOY / "gunicorn.conf.py", "saas.wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    running = Server(proc, base, metrics_dir)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                _get(base + "/healthz")
                if len(running.worker_pids()) == 2:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield running
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "abowerk_http_request_duration_seconds_count"
                and sample.labels["endpoint"] == "/healthz"
            ):
                return sample.value
    return 0.0


@pytest.mark.slow
def test_metrics_add_up_all_worker_processes_when_served_by_gunicorn(server: Server) -> None:
    assert not (server.metrics_dir / "counter_999999.db").exists()  # emptied at start
    before = _healthz_count(_get(server.base + "/metrics"))
    for _ in range(40):  # a new connection each: both worker processes get some
        _get(server.base + "/healthz")
    # whichever process answers the scrape, it reports the server's total
    for _ in range(4):
        assert _healthz_count(_get(server.base + "/metrics")) == before + 40


@pytest.mark.slow
def test_dead_worker_keeps_its_counts_and_the_master_stops_on_sigterm(
    server: Server,
) -> None:
    for _ in range(20):
        _get(server.base + "/healthz")
    counted = _healthz_count(_get(server.base + "/metrics"))
    victim = min(server.worker_pids())
    os.kill(victim, signal.SIGTERM)  # gunicorn replaces it; child_exit marks it dead
    deadline = time.monotonic() + 30
    while list(server.metrics_dir.glob(f"*_{victim}.db")) or len(server.worker_pids()) < 2:
        assert time.monotonic() < deadline, "the dead worker's files were not folded away"
        time.sleep(0.2)
    # its requests are still counted, folded into the archive
    assert _healthz_count(_get(server.base + "/metrics")) == counted
    started = time.monotonic()
    os.kill(server.proc.pid, signal.SIGTERM)  # graceful stop of the whole server
    assert server.proc.wait(timeout=40) == 0
    assert time.monotonic() - started < 30  # idle: no need to wait for graceful_timeout
