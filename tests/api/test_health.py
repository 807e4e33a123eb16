from __future__ import annotations

from flask.testing import FlaskClient


def test_healthz_answers_when_process_is_up(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json == {"status": "ok"}


def test_readyz_reports_ready_when_database_is_migrated_to_head(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.json
    assert resp.json["migrations"] == "at_head"
