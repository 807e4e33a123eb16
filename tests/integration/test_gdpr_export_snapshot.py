"""Snapshot of the export format: every file of the ZIP for one customer, with frozen time and
deterministic ids, and the field list of every export schema.

A change to what leaves the platform shows up here as a diff. When it is intended, bump
`compliance.export_schemas.SCHEMA_VERSION` and regenerate:

    ABOWERK_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest \
        tests/integration/test_gdpr_export_snapshot.py
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from billing.invoices.schemas import InvoiceCreateIn
from billing.invoices.services import create_draft, finalize_invoice
from billing.payments.schemas import ManualPaymentIn
from billing.payments.services import record_manual_payment
from billing.sellers.schemas import SellerProfileIn
from billing.sellers.services import put_seller_profile
from compliance import services
from compliance.export_schemas import CATEGORIES, SCHEMA_VERSION, Manifest
from saas.catalog import services as catalog
from saas.catalog.schemas import PlanCreateSchema, PriceCreateSchema, ProductCreateSchema
from saas.customers.schemas import CustomerCreateSchema
from saas.customers.services import create_customer
from saas.extensions import db
from saas.gdpr.runtime import compliance_config
from saas.kernel import ids, tenancy
from saas.kernel.secretbox import SecretBox
from saas.subscriptions.services import create_subscription
from saas.tenants.services import create_tenant
from saas.webhooks.services import create_endpoint, dispatch_events
from tests.api.test_seller_profile import SELLER
from tests.conftest import CUSTOMER

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots" / "gdpr_export"
UPDATE = os.environ.get("ABOWERK_UPDATE_SNAPSHOTS") == "1"
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


class _Time:
    def __init__(self) -> None:
        self.ms = int(T0.timestamp() * 1000)

    def time_ns(self) -> int:
        self.ms += 1
        return self.ms * 1_000_000


class _Random:
    def __init__(self) -> None:
        self.n = 0

    def urandom(self, size: int) -> bytes:
        self.n += 1
        return self.n.to_bytes(size, "big")


@pytest.fixture
def deterministic_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """`saas.kernel.ids.new_id` reads `time` and `os` of its module: replace both there only."""
    monkeypatch.setattr(ids, "time", _Time())
    monkeypatch.setattr(ids, "os", _Random())


def _check(name: str, content: Any) -> None:
    path = SNAPSHOTS / name
    text = json.dumps(content, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no snapshot {path}: run with ABOWERK_UPDATE_SNAPSHOTS=1 once")
        path.write_text(text)
        return
    assert json.loads(path.read_text()) == content, f"{name} differs from its snapshot"


@pytest.fixture
def export_files(app: Flask, deterministic_ids: None) -> dict[str, Any]:
    """Build one customer's access export through the services at frozen times."""
    cfg = compliance_config(app)
    with app.app_context():
        session = db.session
        with tenancy.unscoped(session):
            tenant = create_tenant(session, name="Muster GmbH", slug="snapshot", now=T0)
        tenancy.set_tenant(session, tenant.id, livemode=False)
        box = SecretBox("test-secret-key-not-for-production")
        create_endpoint(
            session, box, url="https://hooks.example.de/abowerk?token=secret",
            enabled_events=["customer.*"], livemode=False, now=T0,
        )  # fmt: skip
        customer = create_customer(
            session,
            CustomerCreateSchema().load({**CUSTOMER, "vat_id": "DE136695976"}),
            now=T0 + timedelta(minutes=1),
        )
        product = catalog.create_product(
            session, ProductCreateSchema().load({"name": "abowerk Cloud"}), now=T0
        )
        plan = catalog.create_plan(
            session, PlanCreateSchema().load({"product_id": product.id, "name": "Pro"}), now=T0
        )
        price = catalog.create_price(
            session,
            PriceCreateSchema().load(
                {"plan_id": plan.id, "unit_amount": 4900, "interval": "month"}
            ),
            now=T0,
        )
        create_subscription(
            session,
            {"customer_id": customer.id, "price_id": price.id, "quantity": 1,
             "has_payment_method": True},
            actor="key_snapshot",
            now=T0 + timedelta(minutes=2),
        )  # fmt: skip
        put_seller_profile(session, SellerProfileIn().load(SELLER), now=T0)
        draft = create_draft(
            session,
            InvoiceCreateIn().load(
                {"customer_id": customer.id, "lines": [{"description": "abowerk Cloud Pro",
                 "quantity": "1", "unit_amount": 4900}]}
            ),
            now=T0 + timedelta(minutes=3),
        )  # fmt: skip
        finalize_invoice(session, draft.id, actor="key_snapshot", now=T0 + timedelta(minutes=4))
        record_manual_payment(
            session,
            draft.id,
            ManualPaymentIn().load(
                {"amount": 2000, "currency": "EUR", "reference": "BANK-2026-11-0001",
                 "received_at": "2026-11-02T09:34:00Z",
                 "note": f"Teilzahlung {CUSTOMER['name']}"}
            ),
            now=T0 + timedelta(minutes=5),
        )  # fmt: skip
        dispatch_events(session, now=T0 + timedelta(minutes=5))
        at = T0 + timedelta(days=1)
        request = services.create_request(
            session, cfg, customer_id=customer.id, kind="access", actor="key_snapshot", now=at
        )
        services.verify_identity(
            session, cfg, request.id, method="tenant_attestation",
            note="asked from the registered address", actor="key_snapshot", now=at,
        )  # fmt: skip
        result = services.fulfil_request(session, cfg, request.id, actor="key_snapshot", now=at)
        assert result.download is not None
        path = cfg.export_path(tenant.id, result.download.export_id)
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
            files = {name: json.loads(archive.read(name)) for name in archive.namelist()}
        session.rollback()
        path.unlink()
        db.session.remove()
    return files


def test_export_files_match_their_snapshots_when_built_at_a_frozen_time(
    export_files: dict[str, Any],
) -> None:
    assert list(export_files) == ["manifest.json", *(c.file for c in CATEGORIES)]
    Manifest().load(export_files["manifest.json"])
    for invoice in export_files["invoices.json"]:
        # the hash of billing's canonical snapshot: its format is billing's business, only
        # that the export carries a SHA-256 is pinned here
        assert len(invoice["sha256"]) == 64
        invoice["sha256"] = "<sha256 of the frozen snapshot>"
    for name, content in export_files.items():
        _check(name, content)


def test_export_schemas_list_exactly_their_fields_when_pinned() -> None:
    fields = {c.name: _fields(c.schema()) for c in CATEGORIES}
    _check("_fields.json", {"schema_version": SCHEMA_VERSION, "categories": fields})


def _fields(schema: Any) -> dict[str, Any]:
    import marshmallow as ma

    out: dict[str, Any] = {}
    for name, field in schema.fields.items():
        if isinstance(field, ma.fields.Nested):
            out[name] = _fields(field.schema)
        elif isinstance(field, ma.fields.List) and isinstance(field.inner, ma.fields.Nested):
            out[name] = [_fields(field.inner.schema)]
        else:
            out[name] = type(field).__name__
    return out
