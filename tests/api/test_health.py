from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient


def test_healthz_answers_when_process_is_up(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json == {"status": "ok"}


def test_readyz_reports_ready_when_database_is_migrated_to_head(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.json
    assert resp.json["migrations"] == "at_head"


def test_readyz_is_503_when_migrations_are_not_at_head(tmp_path: Path) -> None:
    from saas.app import create_app
    from saas.extensions import db
    from tests.conftest import make_environ

    unmigrated = create_app({"ENVIRON": make_environ(f"sqlite:///{tmp_path}/new.db", tmp_path)})
    try:
        resp = unmigrated.test_client().get("/readyz")
        assert resp.status_code == 503
        assert resp.json["migrations"]["current"] == []
        assert unmigrated.test_client().get("/healthz").status_code == 200
    finally:
        with unmigrated.app_context():
            db.engine.dispose()
