"""Restore drill: back up, restore into a fresh database, compare every table's checksum."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.app import create_app
from saas.extensions import db
from saas.ops.backup import backup, restore, table_checksums
from tests.api.test_subscriptions import create_subscription
from tests.conftest import CUSTOMER, TenantCtx, make_environ


@pytest.fixture
def fresh_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind as the test database."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path}/restored.sqlite3"
        return
    name = f"abowerk_restore_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_restore_into_fresh_database_reproduces_every_table_when_drilled(
    client: FlaskClient,
    tenant: TenantCtx,
    other_tenant: TenantCtx,
    owner_engine: sa.Engine,
    fresh_database: str,
    tmp_path: Path,
) -> None:
    for t in (tenant, other_tenant):  # several tenants: RLS must not thin out the dump
        create_subscription(client, t)
        client.post("/v1/customers", json=CUSTOMER | {"email": "b@example.de"}, headers=t.headers)
    before = table_checksums(owner_engine)
    with owner_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM customers")).scalar_one() == 4

    dump = backup(str(owner_engine.url.render_as_string(hide_password=False)), tmp_path / "b")
    restore(fresh_database, dump)

    restored_engine = sa.create_engine(fresh_database, poolclass=sa.pool.NullPool)
    try:
        assert table_checksums(restored_engine) == before
    finally:
        restored_engine.dispose()
    # the restored database serves the platform: migrations at head, data readable by key
    restored_app = create_app({"ENVIRON": make_environ(fresh_database, tmp_path)})
    try:
        http = restored_app.test_client()
        assert http.get("/readyz").status_code == 200
        listing: Any = http.get("/v1/customers", headers=tenant.headers).json
        assert len(listing["data"]) == 2
    finally:
        with restored_app.app_context():
            db.engine.dispose()


def test_backup_command_writes_a_restorable_file_when_run(app: Flask, tmp_path: Path) -> None:
    result = app.test_cli_runner().invoke(args=["backup", "--output", str(tmp_path / "x.bak")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.bak").stat().st_size > 0
