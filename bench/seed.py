"""Seeding many due subscriptions quickly, shared by the billing benchmarks and the scale test.

A few tenants are set up through the API (seller profile, catalog, one customer and
subscription per buyer kind), so that their rows are exactly what the services write; those
template rows are then cloned with ``COPY`` (customers, subscriptions, their periods and their
pending period charges) up to the wanted number of subscriptions. Mix: every 5th tenant a
Kleinunternehmer, one in ten Austrian; buyers DE, AT and NL consumers and businesses with
VAT IDs, FR and US consumers; monthly and yearly prices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

KINDS: dict[str, dict[str, Any]] = {
    "de_consumer": {"country": "DE", "postal_code": "10115", "city": "Berlin"},
    "de_business": {
        "country": "DE",
        "postal_code": "80331",
        "city": "München",
        "is_business": True,
        "vat_id": "DE811907980",
    },
    "at_consumer": {"country": "AT", "postal_code": "1010", "city": "Wien"},
    "at_business": {
        "country": "AT",
        "postal_code": "1010",
        "city": "Wien",
        "is_business": True,
        "vat_id": "ATU13585627",
    },
    "fr_consumer": {"country": "FR", "postal_code": "69003", "city": "Lyon"},
    "nl_consumer": {"country": "NL", "postal_code": "1011", "city": "Amsterdam"},
    "nl_business": {
        "country": "NL",
        "postal_code": "1011",
        "city": "Amsterdam",
        "is_business": True,
        "vat_id": "NL004495445B01",
    },
    "us_consumer": {"country": "US", "postal_code": "10001", "city": "New York"},
}

# what one template subscription clones into, in the order they are written
TABLES = ("customers", "subscriptions", "subscription_periods", "subscription_charges")


def seller(i: int) -> dict[str, Any]:
    austrian = i % 10 == 3
    kleinunternehmer = i % 5 == 0
    body: dict[str, Any] = {
        "legal_name": f"Bench {i} GmbH",
        "address": {
            "line1": "Hauptstr. 1",
            "postal_code": "1010" if austrian else "10115",
            "city": "Wien" if austrian else "Berlin",
            "country": "AT" if austrian else "DE",
        },
        "tax_number": "37/123/45678",
        "bank": {"iban": "DE89370400440532013000", "account_holder": f"Bench {i} GmbH"},
        "kleinunternehmer": kleinunternehmer,
    }
    # a Kleinunternehmer selling to businesses in other member states needs a VAT ID too
    body["vat_id"] = "ATU13585627" if austrian else "DE811907980"
    return body


def customer_body(kind: str) -> dict[str, Any]:
    facts = dict(KINDS[kind])
    address = {
        "line1": "Musterweg 1",
        "postal_code": facts.pop("postal_code"),
        "city": facts.pop("city"),
        "country": facts.pop("country"),
    }
    body = {"email": f"{kind}@example.org", "name": f"Kunde {kind}", "address": address, **facts}
    if "vat_id" in body:
        body["vat_id_check"] = {"status": "valid", "checked_at": "2026-01-05T10:00:00Z"}
    return body


def seed_templates(app: Any, tenants: int) -> list[str]:
    """Tenants, seller profiles, catalogs and one customer + subscription per kind."""
    from saas.auth.services import create_api_key
    from saas.extensions import db
    from saas.kernel import tenancy
    from saas.kernel.clock import utcnow
    from saas.tenants.services import create_tenant

    client = app.test_client()
    ids = []
    for i in range(tenants):
        with app.app_context():
            session = db.session
            with tenancy.unscoped(session):
                tenant = create_tenant(session, name=f"Bench {i} GmbH", now=utcnow())
            tenancy.set_tenant(session, tenant.id)
            _, secret = create_api_key(session, tenant_id=tenant.id, now=utcnow())
            session.commit()
            tenant_id = tenant.id
            db.session.remove()
        headers = {"Authorization": f"Bearer {secret}"}

        def post(path: str, body: dict[str, Any], headers: dict[str, str] = headers) -> Any:
            resp = client.post(path, json=body, headers=headers)
            assert resp.status_code in (200, 201), (path, resp.json)
            return resp.json

        resp = client.put("/v1/seller_profile", json=seller(i), headers=headers)
        assert resp.status_code == 200, resp.json
        product = post("/v1/products", {"name": "Cloud"})
        plan = post("/v1/plans", {"product_id": product["id"], "name": "Pro"})
        prices = [
            post("/v1/prices", {"plan_id": plan["id"], "unit_amount": amount, "interval": iv})
            for amount, iv in ((1900, "month"), (4900, "month"), (49000, "year"))
        ]
        for n, kind in enumerate(KINDS):
            cust = post("/v1/customers", customer_body(kind))
            post(
                "/v1/subscriptions",
                {
                    "customer_id": cust["id"],
                    "price_id": prices[n % len(prices)]["id"],
                    "has_payment_method": True,
                },
            )
        ids.append(tenant_id)
    return ids


def _copy(conn: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    cols = ", ".join(f'"{c}"' for c in columns)
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


@dataclass(frozen=True)
class Templates:
    """A tenant's template rows: per table, the column names and the rows."""

    tenant_id: str
    tables: dict[str, tuple[list[str], list[Any]]]

    @property
    def subscriptions(self) -> int:
        return len(self.tables["subscriptions"][1])


def capture_templates(owner: sa.Engine, tenant_ids: list[str]) -> list[Templates]:
    """Read each tenant's rows as they are now (take them before any billing run, while
    every charge is still pending)."""
    raw = owner.raw_connection()
    try:
        dbapi = raw.driver_connection
        found = []
        for tenant_id in tenant_ids:
            tables = {}
            with dbapi.cursor() as cur:
                for table in TABLES:
                    # constant table names, never input
                    cur.execute(f"SELECT * FROM {table} WHERE tenant_id = %s", (tenant_id,))  # noqa: S608
                    tables[table] = ([d.name for d in cur.description], cur.fetchall())
            dbapi.rollback()
            found.append(Templates(tenant_id, tables))
        return found
    finally:
        raw.close()


def _clone_rows(templates: Templates, clones: int, tag: str) -> dict[str, list[tuple[Any, ...]]]:
    from saas.kernel.ids import new_id

    customers_cols, customers = templates.tables["customers"]
    subs_cols, subs = templates.tables["subscriptions"]
    per_cols, periods = templates.tables["subscription_periods"]
    ch_cols, charges = templates.tables["subscription_charges"]
    by_customer = {c[customers_cols.index("id")]: c for c in customers}
    period_of = {p[per_cols.index("subscription_id")]: p for p in periods}
    charge_of = {c[ch_cols.index("subscription_id")]: c for c in charges}
    out: dict[str, list[tuple[Any, ...]]] = {table: [] for table in TABLES}
    for n in range(clones):
        sub = list(subs[n % len(subs)])
        cust = list(by_customer[sub[subs_cols.index("customer_id")]])
        period = list(period_of[sub[subs_cols.index("id")]])
        charge = list(charge_of[sub[subs_cols.index("id")]])
        # one fresh id part for the clone's four rows (each table has its own prefix)
        unique = new_id("x")[2:]
        cust_id, sub_id = f"cus_{unique}", f"sub_{unique}"
        period_id, charge_id = f"sper_{unique}", f"sch_{unique}"
        cust[customers_cols.index("id")] = cust_id
        cust[customers_cols.index("email")] = f"{tag}{n}@example.org"
        sub[subs_cols.index("id")] = sub_id
        sub[subs_cols.index("customer_id")] = cust_id
        period[per_cols.index("id")] = period_id
        period[per_cols.index("subscription_id")] = sub_id
        charge[ch_cols.index("id")] = charge_id
        charge[ch_cols.index("subscription_id")] = sub_id
        charge[ch_cols.index("customer_id")] = cust_id
        charge[ch_cols.index("period_id")] = period_id
        # the clone's period charge is pending, whatever became of the template's
        charge[ch_cols.index("invoiced_at")] = None
        charge[ch_cols.index("invoice_id")] = None
        out["customers"].append(tuple(cust))
        out["subscriptions"].append(tuple(sub))
        out["subscription_periods"].append(tuple(period))
        out["subscription_charges"].append(tuple(charge))
    return out


def _is_json(value: Any) -> bool:
    return isinstance(value, dict | list)


def add_clones(owner: sa.Engine, templates: list[Templates], per_tenant: int, tag: str) -> None:
    """``per_tenant`` more subscriptions for each tenant, cloned from its templates with
    ``COPY``, each with its period's charge pending (``tag`` keeps the e-mails apart from
    earlier clones); then ANALYZE."""
    raw = owner.raw_connection()
    try:
        dbapi = raw.driver_connection
        for tenant in templates:
            out = _clone_rows(tenant, per_tenant, tag)
            for table in TABLES:
                cols, template_rows = tenant.tables[table]
                rows = out[table]
                # JSON columns (dicts and lists) go to COPY as text
                jsons = {i for r in template_rows for i, v in enumerate(r) if _is_json(v)}
                if jsons:
                    rows = [
                        tuple(json.dumps(v) if i in jsons else v for i, v in enumerate(row))
                        for row in rows
                    ]
                _copy(dbapi, table, cols, rows)
            dbapi.commit()
        with dbapi.cursor() as cur:
            cur.execute("ANALYZE")
        dbapi.commit()
    finally:
        raw.close()


def clone(owner: sa.Engine, tenant_ids: list[str], subscriptions: int) -> None:
    """Clone each tenant's template customers, subscriptions, periods and pending charges
    with COPY until there are ``subscriptions`` in all."""
    per_tenant = subscriptions // len(tenant_ids)
    templates = capture_templates(owner, tenant_ids)
    # the templates count: each tenant ends with exactly per_tenant subscriptions
    assert len({t.subscriptions for t in templates}) == 1, "tenants seeded alike"
    clones = per_tenant - templates[0].subscriptions
    add_clones(owner, templates, clones, "c")
