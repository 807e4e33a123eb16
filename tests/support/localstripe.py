"""localstripe, a local fake of the Stripe API, as a real process on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start() -> tuple[subprocess.Popen[bytes], str] | None:
    """One try: a free port, the process, and its first answer (None: it died or hung)."""
    port = _free_port()
    binary = Path(sys.executable).parent / "localstripe"
    # --from-scratch: without it localstripe loads /tmp/localstripe.pickle, which every other
    # localstripe process on the machine rewrites on each change; a half-written file kills
    # the start-up (and old objects would leak into the test)
    proc = subprocess.Popen(
        [str(binary), "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    # generous: on a loaded 2-core machine the process needs over 10 s to import aiohttp
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{base}/v1/customers", auth=("sk_test_probe", ""), timeout=5)
            return proc, base
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                proc.wait(timeout=10)
                return None
            time.sleep(0.1)


@contextmanager
def running_localstripe() -> Iterator[str]:
    # a few tries: the free port can be taken by another process before localstripe binds it
    for _ in range(3):
        started = _start()
        if started is not None:
            break
    else:
        raise RuntimeError("localstripe did not start")
    proc, base = started
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# localstripe keeps its objects in memory and in /tmp/localstripe.pickle, a path shared by
# every localstripe on the machine. This bootstrap gives one process a pickle of its own, so
# that it can be stopped and started again with its customers, cards and PaymentIntents.
_BOOTSTRAP = """
import os, pickle, sys
from localstripe import resources
path = sys.argv.pop(1)
def load(self):
    try:
        with open(path, 'rb') as f:
            old = pickle.load(f)
    except FileNotFoundError:
        return
    self.clear()
    self.update(old)
def dump(self):
    with open(path + '.tmp', 'wb') as f:
        pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(path + '.tmp', path)
resources.Store.try_load_from_disk = load
resources.Store.dump_to_disk = dump
from localstripe.server import start
start()
"""


class RestartableLocalstripe:
    """A localstripe on a fixed port that can go down and come back with its data."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, str(self.state_file), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60  # slow imports on a loaded machine, as above
        while True:
            try:
                requests.get(f"{self.base}/v1/customers", auth=("sk_test_probe", ""), timeout=5)
                return
            except (requests.ConnectionError, requests.Timeout):
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None
