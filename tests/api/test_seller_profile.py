"""Seller profile API: GET/PUT /v1/seller_profile, validation at the door, one per mode.

`SELLER` and `put_profile` are the factories the invoice tests import.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from flask.testing import FlaskClient

from billing.documents.examples import EXAMPLE_LOGO
from tests.conftest import TenantCtx

SELLER: dict[str, Any] = {
    "legal_name": "Beispiel Software GmbH",
    "address": {
        "line1": "Friedrichstraße 123",
        "postal_code": "10117",
        "city": "Berlin",
        "country": "DE",
    },
    "tax_number": "37/123/45678",
    "vat_id": "DE 811 907 980",
    "legal_registration_id": "HRB 123456 B, Amtsgericht Charlottenburg",
    "contact": {
        "name": "Anna Schmidt",
        "phone": "+49 30 1234567",
        "email": "rechnung@beispiel-software.example",
    },
    "bank": {
        "iban": "DE89 3704 0044 0532 0130 00",
        "bic": "COBADEFFXXX",
        "account_holder": "Beispiel Software GmbH",
    },
    "logo": base64.b64encode(EXAMPLE_LOGO).decode(),
    "accepted_currencies": ["EUR", "USD"],
}


def seller(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SELLER)
    body.update(changes)
    return body


def put_profile(client: FlaskClient, t: TenantCtx, **changes: Any) -> dict[str, Any]:
    resp = client.put("/v1/seller_profile", json=seller(**changes), headers=t.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def test_profile_is_not_found_when_never_set(client: FlaskClient, tenant: TenantCtx) -> None:
    resp = client.get("/v1/seller_profile", headers=tenant.headers)
    assert resp.status_code == 404
    assert resp.json["code"] == "seller_profile_not_found"


def test_profile_is_stored_normalised_with_defaults_when_put(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    stored = put_profile(client, tenant)
    assert stored["object"] == "seller_profile"
    assert stored["vat_id"] == "DE811907980"
    assert stored["bank"] == {
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "account_holder": "Beispiel Software GmbH",
    }
    assert stored["numbering"] == {
        "invoice_pattern": "RE-{year}-{seq:05}",
        "credit_note_pattern": "GS-{year}-{seq:05}",
        "credit_notes_share_invoice_series": False,
    }
    assert stored["payment_terms_days"] == 14
    assert stored["invoice_language"] == "de"
    assert stored["counters"]["turnover_previous_year"] is None
    assert stored["tax_policy"]["kleinunternehmer_reverse_charge_wording"] is True
    assert base64.b64decode(stored["logo"]) == EXAMPLE_LOGO
    assert client.get("/v1/seller_profile", headers=tenant.headers).json == stored


def test_put_of_what_was_read_changes_nothing_when_sent_back(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    stored = put_profile(client, tenant, kleinunternehmer=False, founded_on="2019-04-01")
    body = {
        k: v
        for k, v in stored.items()
        if k not in ("object", "livemode", "created_at", "updated_at")
    }
    again = client.put("/v1/seller_profile", json=body, headers=tenant.headers)
    assert again.status_code == 200, again.json
    assert {k: v for k, v in again.json.items() if k != "updated_at"} == {
        k: v for k, v in stored.items() if k != "updated_at"
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"vat_id": "DE811907981"}, "vat_id"),  # checksum
        ({"vat_id": "ATU13585627"}, "vat_id"),  # not the seller's country
        ({"tax_number": None, "vat_id": None}, "tax_number"),
        ({"tax_number": "12345"}, "tax_number"),
        ({"bank": {"iban": "DE89370400440532013001", "account_holder": "X"}}, "iban"),
        ({"bank": {"iban": "DE89370400440532013000", "bic": "XX", "account_holder": "X"}}, "bic"),
        ({"logo": base64.b64encode(b"GIF89a...").decode()}, "logo"),
        ({"logo": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 140_000).decode()}, "logo"),
        ({"logo": "not base64!"}, "logo"),
        ({"accent_color": "red"}, "accent_color"),
        ({"numbering": {"invoice_pattern": "RE-{year}"}}, "invoice_pattern"),
        ({"numbering": {"invoice_pattern": "RE {seq}"}}, "invoice_pattern"),
        ({"numbering": {"credit_note_pattern": "{seq.__class__}"}}, "credit_note_pattern"),
        ({"accepted_currencies": []}, "accepted_currencies"),
        ({"accepted_currencies": ["EUR", "XYZ"]}, "accepted_currencies"),
        (
            {
                "address": {
                    "line1": "Rue 1",
                    "postal_code": "1000",
                    "city": "Wien",
                    "country": "AT",
                },
                "vat_id": "ATU13585627",
                "tax_number": None,
                "kleinunternehmer": True,
            },
            "kleinunternehmer",
        ),
        ({"address": {"line1": "X", "postal_code": "1", "city": "Y", "country": "CH"}}, "address"),
        ({"eu_sme_countries": ["AT"]}, "eu_sme_id"),
        ({"destination_option": True}, "destination_option_since"),
        ({"payment_terms_days": -1}, "payment_terms_days"),
        ({"counters": {"turnover_current_year": -5}}, "counters"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_profile_is_refused_and_unchanged_when_input_is_invalid(
    client: FlaskClient, tenant: TenantCtx, changes: dict[str, Any], field: str
) -> None:
    before = put_profile(client, tenant)
    resp = client.put("/v1/seller_profile", json=seller(**changes), headers=tenant.headers)
    assert resp.status_code == 422, resp.json
    assert resp.json["code"] == "validation_failed"
    assert field in str(resp.json["errors"])
    assert client.get("/v1/seller_profile", headers=tenant.headers).json == before


def test_test_and_live_mode_keep_their_own_profile_when_both_are_used(
    client: FlaskClient, make_tenant: Any, app: Any
) -> None:
    from saas.auth.services import create_api_key
    from saas.extensions import db
    from saas.kernel import tenancy
    from saas.kernel.clock import utcnow

    test_ctx = make_tenant("Zwei Modi GmbH")
    put_profile(client, test_ctx)
    with app.app_context():
        tenancy.set_tenant(db.session, test_ctx.tenant_id)
        _, live_secret = create_api_key(
            db.session, tenant_id=test_ctx.tenant_id, now=utcnow(), livemode=True
        )
        db.session.commit()
        db.session.remove()
    live = {"Authorization": f"Bearer {live_secret}"}
    assert client.get("/v1/seller_profile", headers=live).status_code == 404
    resp = client.put("/v1/seller_profile", json=seller(legal_name="Live GmbH"), headers=live)
    assert resp.status_code == 200
    assert resp.json["livemode"] is True
    test_profile = client.get("/v1/seller_profile", headers=test_ctx.headers).json
    assert test_profile["legal_name"] == "Beispiel Software GmbH"


def test_profile_needs_billing_scope_when_written(client: FlaskClient, make_tenant: Any) -> None:
    reader = make_tenant("Nur Lesen GmbH", scopes=["billing:read"])
    resp = client.put("/v1/seller_profile", json=seller(), headers=reader.headers)
    assert resp.status_code == 403
    assert resp.json["code"] == "insufficient_scope"
