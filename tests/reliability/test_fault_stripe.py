"""Fault: the Stripe API down and back, with a finalized invoice waiting to be collected.

localstripe (a real process, as in tests/integration/payments) is stopped after the customer's
card was set up and the invoice finalized. The payments sweep (what the worker's
`payments_tick` runs every minute) then cannot reach Stripe: the attempt's transaction rolls
back, so there is no payment row, no PaymentIntent and no dunning case (an unreachable Stripe
is `unavailable`, not a declined card), and the invoice stays open and due. The sweep finds the
invoice again on every run. When localstripe is back (the same port, the same objects), the
next sweep charges it exactly once: one PaymentIntent, one succeeded payment, the invoice
paid; a further sweep charges nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.payments import runtime
from tests.api.test_invoices import get, make_finalized
from tests.conftest import TenantCtx, count_rows
from tests.integration.payments.test_stripe_flows import payments, stripe_ready, sweep
from tests.support.localstripe import RestartableLocalstripe


@pytest.fixture
def localstripe(tmp_path: Path) -> Iterator[RestartableLocalstripe]:
    server = RestartableLocalstripe(tmp_path / "localstripe.pickle")
    server.start()
    try:
        with runtime.overridden(stripe_api_base=server.base):
            yield server
    finally:
        server.stop()


def payment_intents(server: RestartableLocalstripe) -> list[dict[str, Any]]:
    resp = requests.get(f"{server.base}/v1/payment_intents", auth=("sk_test_probe", ""), timeout=10)
    resp.raise_for_status()
    return list(resp.json()["data"])


def test_collection_waits_for_stripe_and_charges_once_when_stripe_is_down_and_back(
    app: Flask,
    client: FlaskClient,
    owner_engine: sa.Engine,
    tenant: TenantCtx,
    localstripe: RestartableLocalstripe,
) -> None:
    customer_id = stripe_ready(client, tenant)  # Stripe customer and card, while Stripe is up
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    assert payment_intents(localstripe) == []

    localstripe.stop()
    for _ in range(2):  # every sweep while Stripe is down: the same, nothing kept
        summary = sweep(app, tenant)
        assert summary.errors == 1, summary
        assert summary.collections == {}, summary
        assert get(client, tenant, invoice["id"])["status"] == "open"
        assert payments(client, tenant) == []
        assert count_rows(app, owner_engine, "payments") == 0
        assert count_rows(app, owner_engine, "dunning_cases") == 0
    balance = client.get(f"/v1/invoices/{invoice['id']}/payments", headers=tenant.headers)
    assert balance.status_code == 200, balance.json
    assert balance.json["amount_remaining"] == invoice["gross_amount"]

    localstripe.start()  # same port, same customers and cards
    assert payment_intents(localstripe) == []  # the failed tries never reached Stripe
    assert sweep(app, tenant).collections == {"succeeded": 1}
    assert sweep(app, tenant).collections == {}  # nothing charged twice

    assert get(client, tenant, invoice["id"])["status"] == "paid"
    [payment] = payments(client, tenant)
    assert payment["status"] == "succeeded"
    assert payment["amount"] == invoice["gross_amount"]
    assert payment["attempt"] == 1
    [intent] = payment_intents(localstripe)
    assert intent["status"] == "succeeded"
    assert intent["amount"] == invoice["gross_amount"]
    assert intent["id"] == payment["reference"]
    assert count_rows(app, owner_engine, "dunning_cases") == 0
