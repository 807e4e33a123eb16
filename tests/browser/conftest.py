"""Browser tests: Debian's Chromium (`/usr/bin/chromium`) driven by Playwright against the
application served in-process on 127.0.0.1 (werkzeug, a thread, a free port), on SQLite.

Nothing downloads a browser: Playwright is told where Chromium is. Without Chromium the
tests are skipped on a developer's machine, but with `CI=true` they fail instead (`.ci/run`
installs Chromium), as the PostgreSQL tests do.

Screenshots of the main pages are written to `docs/screenshots/` (linked from the README).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from saas.app import create_app
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.conftest import TenantCtx, make_environ

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists() or IN_CI:
        return  # in CI a missing browser fails in the `browser` fixture instead
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium)")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


@dataclass
class Vies:
    """The local stand-in for the VIES register: the portal's real client asks it."""

    valid: set[str] = field(default_factory=lambda: {"ATU13585627", "DE136695976"})
    asked: list[str] = field(default_factory=list)


def _vies_server(state: Vies) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            number = body["countryCode"] + body["vatNumber"]
            state.asked.append(number)
            payload = json.dumps(
                {"valid": number in state.valid, "requestIdentifier": "WAPI-LOCAL"}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@dataclass
class Site:
    app: Flask
    base_url: str
    vies: Vies

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def tenant(self, name: str) -> TenantCtx:
        from saas.auth.services import create_api_key
        from saas.tenants.services import create_tenant

        with self.app.app_context():
            session = db.session
            now = utcnow()
            with tenancy.unscoped(session):
                tenant = create_tenant(session, name=name, now=now)
            tenancy.set_tenant(session, tenant.id)
            key, secret = create_api_key(session, tenant_id=tenant.id, now=now)
            session.commit()
            ctx = TenantCtx(tenant.id, secret, key.id)
            db.session.remove()
        return ctx


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from flask_migrate import upgrade

    var_dir = tmp_path_factory.mktemp("browser-var")
    state = Vies()
    vies = _vies_server(state)
    vies_thread = threading.Thread(target=vies.serve_forever, args=(0.01,), daemon=True)
    vies_thread.start()
    app = create_app(
        {
            "ENVIRON": make_environ(f"sqlite:///{var_dir / 'browser.sqlite3'}", var_dir),
            "ABOWERK_VIES_URL": f"http://127.0.0.1:{vies.server_address[1]}/check",
        }
    )
    with app.app_context():
        upgrade()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(app, f"http://127.0.0.1:{server.server_port}", state)
    finally:
        server.shutdown()
        thread.join()
        vies.shutdown()
        vies.server_close()
        vies_thread.join()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"CI=true but {CHROMIUM} is missing: the browser tests must run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            # containers run as root without user namespaces: Chromium's sandbox cannot start
            args=["--no-sandbox"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, locale="en-GB"
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
