"""`GET/PUT /v1/dunning-settings` on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import TenantCtx

URL = "/v1/dunning-settings"


def test_defaults_are_returned_when_tenant_never_set_any(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    resp = client.get(URL, headers=tenant.headers)
    assert resp.status_code == 200, resp.json
    assert resp.json == {
        "object": "dunning_settings",
        "retry_days": [1, 3, 5, 7],
        "final_action": "cancel",
        "send_reminders": True,
        "updated_at": None,
    }


def test_settings_are_replaced_and_read_back_when_put(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    body = {"retry_days": [2, 5, 10], "final_action": "mark_uncollectible", "send_reminders": False}
    resp = client.put(URL, json=body, headers=tenant.headers)
    assert resp.status_code == 200, resp.json
    assert {k: resp.json[k] for k in body} == body
    assert resp.json["updated_at"] is not None
    assert client.get(URL, headers=tenant.headers).json == resp.json
    # PUT replaces: what is not sent goes back to its default
    again = client.put(URL, json={"retry_days": [1]}, headers=tenant.headers).json
    assert (again["retry_days"], again["final_action"], again["send_reminders"]) == (
        [1],
        "cancel",
        True,
    )


def test_settings_are_per_tenant_when_two_tenants_set_them(
    client: FlaskClient, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    client.put(URL, json={"retry_days": [4]}, headers=tenant.headers)
    assert client.get(URL, headers=other_tenant.headers).json["retry_days"] == [1, 3, 5, 7]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"retry_days": [3, 1]}, "invalid_retry_schedule", "retry_days"),
        ({"retry_days": []}, "invalid_retry_schedule", "retry_days"),
        ({"retry_days": [0, 1]}, "invalid_retry_schedule", "retry_days"),
        ({"retry_days": [1, 61]}, "invalid_retry_schedule", "retry_days"),
        ({"retry_days": list(range(1, 12))}, "invalid_retry_schedule", "retry_days"),
        ({"retry_days": ["1"]}, "validation_failed", "retry_days"),
        ({"retry_days": [1.5]}, "validation_failed", "retry_days"),
        ({"final_action": "forgive"}, "validation_failed", "final_action"),
        ({"send_reminders": "maybe"}, "validation_failed", "send_reminders"),
        ({"grace_days": 3}, "validation_failed", "grace_days"),
    ],
)
def test_invalid_settings_are_refused_and_nothing_changes_when_put(
    client: FlaskClient, tenant: TenantCtx, body: dict[str, Any], code: str, field: str
) -> None:
    client.put(URL, json={"retry_days": [2, 4]}, headers=tenant.headers)
    resp = client.put(URL, json=body, headers=tenant.headers)
    assert resp.status_code == 422, resp.json
    assert resp.json["code"] == code
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert field in str(resp.json.get("errors", {}))
    assert client.get(URL, headers=tenant.headers).json["retry_days"] == [2, 4]


def test_settings_need_the_billing_scope_when_read_or_written(
    client: FlaskClient, make_tenant: Any
) -> None:
    reader = make_tenant("Lesend GmbH", scopes=["billing:read"])
    assert client.get(URL, headers=reader.headers).status_code == 200
    assert client.put(URL, json={}, headers=reader.headers).status_code == 403
    stranger = make_tenant("Kunden GmbH", scopes=["customers:write"])
    assert client.get(URL, headers=stranger.headers).status_code == 403


def test_settings_need_a_credential_when_requested(client: FlaskClient) -> None:
    assert client.get(URL).status_code == 401
