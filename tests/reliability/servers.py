"""Real server processes for the reliability tests: gunicorn with the deploy configuration and
the `abowerk worker`, on 127.0.0.1, each in a process group of its own so that a test can
kill exactly what it started (and nothing else) when it is done."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no answer on 127.0.0.1:{port} within {timeout} s")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    try:
        _stop(proc, sig)
    finally:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextmanager
def gunicorn(
    environ: dict[str, str], *, log: IO[bytes] | None = None, **settings: str
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """gunicorn with deploy/gunicorn.conf.py on a free port; `settings` become environment
    variables (WEB_CONCURRENCY=…, GUNICORN_THREADS=…)."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "saas.wsgi:app"],
        env={**os.environ, **environ, **settings, "ABOWERK_BIND": f"127.0.0.1:{port}"},
        cwd=ROOT,
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_ready(port, proc)
        yield port, proc
    finally:
        stop(proc)


def start_worker(environ: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """`abowerk worker …` in a process group of its own (stop it with `stop`)."""
    return subprocess.Popen(
        [str(BIN / "abowerk"), "worker", *args],
        env={**os.environ, **environ},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
