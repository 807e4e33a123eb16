"""Test harness: one migrated database per backend per run, emptied after each test.

Backends: SQLite (always) and PostgreSQL (marked `postgres`, enabled by
ABOWERK_TEST_POSTGRES_URL). Tests that use the `app` fixture run on both. In CI
(`CI=true`) a missing PostgreSQL is an error, never a skip.

Each run creates its own PostgreSQL database from the given URL, so parallel runs and a
developer's data never meet; it is dropped at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.app import create_app
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.kernel.db import Base

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("ABOWERK_TEST_POSTGRES_URL", "")

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# for tests of PostgreSQL-only features (row-level security, roles): no SQLite variant at all
POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

_skipped_postgres: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgres" in report.keywords:
        _skipped_postgres.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _skipped_postgres:
        print(f"\nCI: {len(_skipped_postgres)} PostgreSQL test(s) were skipped; failing the run.")  # noqa: T201
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _pg_url(url: str) -> sa.URL:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return sa.make_url(url)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    if not PG_URL:
        if IN_CI:
            pytest.fail(
                "CI=true but ABOWERK_TEST_POSTGRES_URL is not set: PostgreSQL tests must run"
            )
        pytest.skip("set ABOWERK_TEST_POSTGRES_URL to run the PostgreSQL tests")
    base = _pg_url(PG_URL)
    name = f"abowerk_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "abowerk.sqlite3"
        return f"sqlite:///{path}"
    return str(request.getfixturevalue("postgres_database"))


def make_environ(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "ABOWERK_DATABASE_URL": database_url,
        "ABOWERK_VAR_DIR": str(var_dir),
        "ABOWERK_SECRET_KEY": "test-secret-key-not-for-production",
        "ABOWERK_RATE_LIMIT": "10000 per second",
        "ABOWERK_AUTH_FAILURE_LIMIT": "10000 per minute",
        "ABOWERK_TASKS_IMMEDIATE": "1",
        "ABOWERK_LOG_LEVEL": "WARNING",
        **extra,
    }


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    from flask_migrate import upgrade

    var_dir = tmp_path_factory.mktemp("var")
    application = create_app({"ENVIRON": make_environ(database_url, var_dir), "TESTING": True})
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def owner_engine(app: Flask) -> Iterator[sa.Engine]:
    """The login role without `SET ROLE`: the schema owner, for set-up and clean-up only."""
    with app.app_context():
        url = db.engine.url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _empty_database(request: pytest.FixtureRequest) -> Iterator[None]:
    if "app" not in request.fixturenames:
        yield
        return
    engine: sa.Engine = request.getfixturevalue("owner_engine")
    yield
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} CASCADE")
        else:
            for name in reversed(tables):
                conn.exec_driver_sql(f"DELETE FROM {name}")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class TenantCtx:
    tenant_id: str
    api_key: str
    api_key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def make_tenant(app: Flask) -> Any:
    from saas.auth.services import create_api_key
    from saas.tenants.services import create_tenant

    def make(
        name: str = "Muster GmbH", *, scopes: list[str] | None = None, livemode: bool = False
    ) -> TenantCtx:
        with app.app_context():
            session = db.session
            now = utcnow()
            with tenancy.unscoped(session):
                tenant = create_tenant(session, name=name, now=now)
            tenancy.set_tenant(session, tenant.id)
            key, secret = create_api_key(
                session, tenant_id=tenant.id, now=now, scopes=scopes, livemode=livemode
            )
            session.commit()
            ctx = TenantCtx(tenant.id, secret, key.id)
            db.session.remove()
        return ctx

    return make


@pytest.fixture
def tenant(make_tenant: Any) -> TenantCtx:
    return make_tenant("Muster GmbH")


@pytest.fixture
def other_tenant(make_tenant: Any) -> TenantCtx:
    return make_tenant("Andere AG")


CUSTOMER = {
    "email": "erika@example.de",
    "name": "Erika Mustermann",
    "address": {"line1": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
}


@pytest.fixture
def customer_payload() -> dict[str, Any]:
    import copy

    return copy.deepcopy(CUSTOMER)


def count_rows(app: Flask, engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.fixture
def restore_huey() -> Iterator[None]:
    """A test that builds apps of its own rebinds the global task queue: put the suite's
    binding back after it."""
    from saas import worker

    saved = (
        worker._bound_app,
        worker.huey.storage_class,
        worker.huey.storage_kwargs,
        worker.huey._immediate,
        worker.huey.storage,
    )
    yield
    (
        worker._bound_app,
        worker.huey.storage_class,
        worker.huey.storage_kwargs,
        worker.huey._immediate,
        worker.huey.storage,
    ) = saved
