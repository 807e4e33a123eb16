"""`/healthz`: the process answers. `/readyz`: the database answers and its schema is at head."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from saas.extensions import db

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

blp = Blueprint("health", __name__)


def migration_heads() -> set[str]:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(cfg).get_heads())


@blp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz() -> ResponseReturnValue:
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except sa.exc.SQLAlchemyError:
        return jsonify(status="unavailable", database="unreachable"), 503
    expected = migration_heads()
    if current != expected:
        return (
            jsonify(
                status="unavailable",
                database="ok",
                migrations={"current": sorted(current), "expected": sorted(expected)},
            ),
            503,
        )
    return jsonify(status="ok", database="ok", migrations="at_head")
