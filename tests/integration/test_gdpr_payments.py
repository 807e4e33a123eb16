"""Erasure deletes the person's Stripe customer (against localstripe) and records the result."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from billing.payments.gateway import StripeGateway
from compliance.providers.payments import stripe_customer_deleter
from compliance.registry import registry
from tests.api.test_gdpr_exports import fulfil
from tests.api.test_gdpr_requests import new_customer, verified_request
from tests.conftest import TenantCtx
from tests.support.localstripe import running_localstripe


@pytest.fixture(scope="module")
def stripe_base() -> Iterator[str]:
    with running_localstripe() as base:
        yield base


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _erase(client: FlaskClient, tenant: TenantCtx, customer_id: str) -> dict[str, Any]:
    return fulfil(client, tenant, verified_request(client, tenant, "erasure", customer_id)["id"])


def test_stripe_customer_is_deleted_and_recorded_when_the_person_is_erased(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_base: str
) -> None:
    gateway = StripeGateway("sk_test_abowerk", api_base=stripe_base)
    customer_id = new_customer(client, tenant)
    stripe_id = gateway.create_customer(
        reference=customer_id, email="erika@example.de", name="Erika", idempotency_key=customer_id
    )
    deleter = stripe_customer_deleter(
        gateway_for=lambda session, subject: gateway,
        customer_ids=lambda session, subject: (
            [stripe_id] if subject.customer_id == customer_id else []
        ),
    )
    with registry.temporarily(payment_deleters={"stripe": deleter}):
        done = _erase(client, tenant, customer_id)
        other = _erase(client, tenant, new_customer(client, tenant, email="max@example.de"))
    assert done["outcome"]["payment_providers"] == [
        {"provider": "stripe", "status": "deleted", "reference": stripe_id, "error": None}
    ]
    assert other["outcome"]["payment_providers"][0]["status"] == "no_customer"
    resp = requests.get(
        f"{stripe_base}/v1/customers/{stripe_id}", auth=("sk_test_abowerk", ""), timeout=5
    )
    assert resp.status_code == 404 or resp.json().get("deleted") is True


def test_unreachable_stripe_is_recorded_as_failed_when_erasing(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    gateway = StripeGateway("sk_test_abowerk", api_base=_closed_port())
    deleter = stripe_customer_deleter(
        gateway_for=lambda session, subject: gateway,
        customer_ids=lambda session, subject: ["cus_gone"],
    )
    with registry.temporarily(payment_deleters={"stripe": deleter}):
        done = _erase(client, tenant, new_customer(client, tenant))
    assert done["state"] == "completed"  # the person's data here is erased regardless
    assert done["outcome"]["payment_providers"] == [
        {"provider": "stripe", "status": "failed", "reference": None,
         "error": "payment_provider_unavailable"}
    ]  # fmt: skip
