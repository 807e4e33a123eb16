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
