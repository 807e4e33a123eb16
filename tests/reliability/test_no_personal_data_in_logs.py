"""No personal data in logs, over a whole customer life through the API.

Every log record of the flow is captured (our loggers at DEBUG) and formatted by the
production formatter (`JsonFormatter`: message, extra fields, exception text), then searched
for the customer's e-mail address, name, street, postal code with city, and VAT ID, and for
the export download token (a credential: whoever holds an unspent one gets the data). The
flow touches the code paths that log: validation failures that echo input, failed
authentications, idempotent replays, webhook deliveries that fail and are retried (the
receiver echoes the payload in its error body), invoice finalization and downloads, GDPR
access export, download and erasure.

The short load test (test_load_short.py) scans the production server's own log output too.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from saas.http.request_context import JsonFormatter
from tests.api.test_gdpr_exports import download, fulfil
from tests.api.test_gdpr_requests import verified_request
from tests.api.test_invoices import make_finalized
from tests.api.test_subscriptions import create_subscription
from tests.conftest import CUSTOMER, TenantCtx
from tests.support.receiver import start_receiver

PERSON = {
    **CUSTOMER,
    "email": "henrike.vogelsang@example.de",
    "name": "Henrike Vogelsang",
    "address": {
        "line1": "Zwiebelgasse 17",
        "postal_code": "04109",
        "city": "Leipzig",
        "country": "DE",
    },
}
VAT_ID = "DE136695976"
SECRETS = ("henrike.vogelsang", "Vogelsang", "Zwiebelgasse", "04109 Leipzig", VAT_ID)


def _life_of_a_customer(client: FlaskClient, t: TenantCtx) -> list[str]:
    h = t.headers
    receiver, server = start_receiver()
    try:
        receiver.fail_next(1, status=500)
        hook = client.post(
            "/v1/webhook_endpoints",
            json={"url": receiver.url, "enabled_events": ["customer.*", "invoice.*"]},
            headers=h,
        )
        assert hook.status_code == 201, hook.json

        # refused input that contains the person's data
        bad = {**PERSON, "email": "henrike.vogelsang(at)example.de"}
        assert client.post("/v1/customers", json=bad, headers=h).status_code == 422
        bad_vat = {**PERSON, "vat_id": "DE0000Vogelsang"}
        assert client.post("/v1/customers", json=bad_vat, headers=h).status_code in (400, 422)

        keyed = {**h, "Idempotency-Key": "life-1"}
        created = client.post("/v1/customers", json=PERSON, headers=keyed)
        assert created.status_code == 201, created.json
        replay = client.post("/v1/customers", json=PERSON, headers=keyed)
        assert replay.headers.get("Idempotent-Replayed") == "true"
        reused = client.post("/v1/customers", json={**PERSON, "name": "X"}, headers=keyed)
        assert reused.status_code == 422
        customer_id = created.json["id"]
        patched = client.patch(f"/v1/customers/{customer_id}", json={"vat_id": VAT_ID}, headers=h)
        assert patched.status_code == 200, patched.json
        assert client.get(f"/v1/customers?email={PERSON['email']}", headers=h).status_code == 200
        unauthenticated = {"Authorization": "Bearer sk_test_henrike.vogelsang@example.de"}
        assert client.get("/v1/customers", headers=unauthenticated).status_code == 401

        sub = create_subscription(client, t, customer_id=customer_id)
        changed = client.post(
            f"/v1/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=h
        )
        assert changed.status_code in (200, 422), changed.json
        invoice = make_finalized(client, t, customer_id=customer_id)
        for fmt in ("pdf", "xml"):
            got = client.get(f"/v1/invoices/{invoice['id']}/{fmt}", headers=h)
            assert got.status_code == 200

        access = verified_request(client, t, "access", customer_id)
        done = fulfil(client, t, access["id"])
        token = done["download"]["url"].rstrip("/").rsplit("/", 1)[1]
        assert download(client, done["download"]["url"]).status_code == 200
        assert download(client, done["download"]["url"]).status_code != 200  # spent

        other = client.post("/v1/customers", json=PERSON, headers=h).json["id"]
        erasure = verified_request(client, t, "erasure", other)
        assert fulfil(client, t, erasure["id"])["state"] == "completed"
        assert receiver.requests, "no webhook was sent: the delivery paths were not logged"
        return [token]
    finally:
        server.shutdown()
        server.server_close()


def test_no_log_line_holds_the_customers_personal_data_when_a_whole_life_is_run(
    client: FlaskClient, tenant: TenantCtx, caplog: pytest.LogCaptureFixture
) -> None:
    # what production writes: our loggers at every level (their handlers are the ones
    # configured), anything else from WARNING up (Python's last-resort handler)
    with (
        caplog.at_level(logging.DEBUG, logger="abowerk"),
        caplog.at_level(logging.DEBUG, logger="saas"),
    ):
        tokens = _life_of_a_customer(client, tenant)
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert len(lines) > 20, "hardly anything was logged: the scan would prove little"
    leaks: dict[str, Any] = {
        secret: [line for line in lines if secret.lower() in line.lower()][:3]
        for secret in (*SECRETS, *tokens)
    }
    assert {k: v for k, v in leaks.items() if v} == {}
