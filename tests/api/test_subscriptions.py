"""Subscriptions API: create, change (prorated or at period end), cancel, pause, resume,
errors that change nothing, history and optimistic locking.

`create_subscription` and `Shop` at the top are the factories other test modules import.
Amounts are exact: every test that looks at money runs on a test clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.extensions import db
from saas.kernel import tenancy
from saas.subscriptions.models import HistoryIsAppendOnlyError, SubscriptionHistory
from tests.api.test_catalog import create_plan, create_price, create_product
from tests.conftest import CUSTOMER, POSTGRES_ONLY, TenantCtx


def create_subscription(
    client: FlaskClient, t: TenantCtx, price_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    price_id = price_id or create_price(client, t)["id"]
    customer_id = fields.pop("customer_id", None)
    if customer_id is None:
        customer_id = client.post("/v1/customers", json=CUSTOMER, headers=t.headers).json["id"]
    body = {"customer_id": customer_id, "price_id": price_id, "has_payment_method": True, **fields}
    resp = client.post("/v1/subscriptions", json=body, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


@dataclass
class Shop:
    """A tenant's catalog (Starter 19.00, Pro 49.00, Business 99.00 a month; a per-seat and a
    yearly price) and a test clock its customers live on."""

    client: FlaskClient
    tenant: TenantCtx
    clock_id: str
    plans: dict[str, dict[str, Any]]
    prices: dict[str, dict[str, Any]]

    @property
    def headers(self) -> dict[str, str]:
        return self.tenant.headers

    def customer(self) -> str:
        body = {**CUSTOMER, "test_clock_id": self.clock_id}
        resp = self.client.post("/v1/customers", json=body, headers=self.headers)
        assert resp.status_code == 201, resp.json
        return str(resp.json["id"])

    def subscribe(self, price: str = "starter", **fields: Any) -> dict[str, Any]:
        fields.setdefault("customer_id", self.customer())
        return create_subscription(self.client, self.tenant, self.prices[price]["id"], **fields)

    def advance(self, frozen_time: str) -> None:
        resp = self.client.post(
            f"/v1/test_clocks/{self.clock_id}/advance",
            json={"frozen_time": frozen_time},
            headers=self.headers,
        )
        assert resp.status_code == 200, resp.json

    def action(self, sub_id: str, action: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(
            f"/v1/subscriptions/{sub_id}/{action}", json=body or {}, headers=self.headers
        )

    def get(self, sub_id: str) -> dict[str, Any]:
        resp = self.client.get(f"/v1/subscriptions/{sub_id}", headers=self.headers)
        assert resp.status_code == 200, resp.json
        return dict(resp.json)

    def history(self, sub_id: str) -> list[dict[str, Any]]:
        """Oldest first."""
        resp = self.client.get(
            f"/v1/subscriptions/{sub_id}/history?limit=100", headers=self.headers
        )
        assert resp.status_code == 200, resp.json
        return list(reversed(resp.json["data"]))

    def charges(self, sub_id: str) -> list[dict[str, Any]]:
        """In the order written: by creation time, then the day they start, credits first."""
        resp = self.client.get(
            f"/v1/subscriptions/{sub_id}/charges?limit=100", headers=self.headers
        )
        assert resp.status_code == 200, resp.json
        return sorted(
            resp.json["data"], key=lambda c: (c["created_at"], c["starts_on"], c["amount"])
        )

    def price_id(self, name: str) -> str:
        return str(self.prices[name]["id"])


def make_shop(
    client: FlaskClient,
    tenant: TenantCtx,
    *,
    frozen_time: str = "2026-01-01T09:00:00Z",
    trial_days: int = 0,
    trial_end_behavior: str = "cancel",
) -> Shop:
    product = create_product(client, tenant)
    plans = {
        name: create_plan(
            client,
            tenant,
            product["id"],
            name=name.capitalize(),
            trial_days=trial_days,
            trial_end_behavior=trial_end_behavior,
        )
        for name in ("starter", "pro", "business", "team")
    }
    prices = {
        "starter": create_price(client, tenant, plans["starter"]["id"], unit_amount=1900),
        "pro": create_price(client, tenant, plans["pro"]["id"], unit_amount=4900),
        "business": create_price(client, tenant, plans["business"]["id"], unit_amount=9900),
        "pro_yearly": create_price(
            client, tenant, plans["pro"]["id"], unit_amount=49000, interval="year"
        ),
        "pro_usd": create_price(
            client, tenant, plans["pro"]["id"], unit_amount=5900, currency="USD"
        ),
        "seat": create_price(client, tenant, plans["team"]["id"], unit_amount=1000, per_seat=True),
    }
    clock = client.post(
        "/v1/test_clocks", json={"frozen_time": frozen_time, "name": "t"}, headers=tenant.headers
    )
    assert clock.status_code == 201, clock.json
    return Shop(client, tenant, str(clock.json["id"]), plans, prices)


JAN_1_BERLIN = "2025-12-31T23:00:00+00:00"  # local midnight in UTC (CET = UTC+1)
FEB_1_BERLIN = "2026-01-31T23:00:00+00:00"
MAR_1_BERLIN = "2026-02-28T23:00:00+00:00"
JAN_11 = "2026-01-11T09:00:00Z"  # 10:00 in Berlin: 21 of January's 31 days remain


def _unchanged(shop: Shop, sub: dict[str, Any], history: list[dict[str, Any]]) -> None:
    got = shop.get(sub["id"])
    assert got == sub
    assert shop.history(sub["id"]) == history


def test_create_subscription_is_active_and_owes_first_period_when_payment_method_given(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("starter")
    assert sub["id"].startswith("sub_") and sub["object"] == "subscription"
    assert sub["status"] == "active" and sub["currency"] == "EUR"
    assert sub["billing_anchor_on"] == "2026-01-01"
    assert sub["current_period_start_at"] == JAN_1_BERLIN
    assert sub["current_period_end_at"] == FEB_1_BERLIN
    assert sub["started_at"] == "2026-01-01T09:00:00+00:00"  # the clock's time, not the wall's
    assert sub["test_clock_id"] == shop.clock_id
    charges = shop.charges(sub["id"])
    assert [(c["kind"], c["amount"], c["starts_on"], c["ends_on"]) for c in charges] == [
        ("recurring", 1900, "2026-01-01", "2026-02-01")
    ]
    (row,) = shop.history(sub["id"])
    assert row["event"] == "create" and row["seq"] == 1
    assert row["old_status"] is None and row["new_status"] == "active"
    assert row["new_price_id"] == shop.price_id("starter") and row["new_quantity"] == 1
    assert (row["mrr_before"], row["mrr_after"]) == (0, 1900)
    assert row["actor"] == tenant.api_key_id
    listed = client.get(f"/v1/subscriptions?customer_id={sub['customer_id']}", headers=shop.headers)
    assert [s["id"] for s in listed.json["data"]] == [sub["id"]]


def test_subscription_is_incomplete_until_payment_method_when_created_without_one(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("pro", has_payment_method=False)
    assert sub["status"] == "incomplete" and sub["current_period_start_at"] is None
    assert shop.charges(sub["id"]) == []
    shop.advance("2026-01-05T12:00:00Z")
    resp = shop.action(sub["id"], "payment_method", {"has_payment_method": True})
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "active" and resp.json["billing_anchor_on"] == "2026-01-05"
    assert [c["amount"] for c in shop.charges(sub["id"])] == [4900]
    assert [(h["event"], h["mrr_after"]) for h in shop.history(sub["id"])] == [
        ("create", 0),
        ("activate", 4900),
    ]


def test_trial_days_come_from_plan_unless_overridden_when_subscribing(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant, trial_days=14)
    sub = shop.subscribe("pro")
    assert sub["status"] == "trialing"
    assert sub["trial_end_at"] == "2026-01-14T23:00:00+00:00"  # 15 Jan, 00:00 in Berlin
    assert sub["billing_anchor_on"] == "2026-01-15"
    assert shop.charges(sub["id"]) == []
    assert shop.history(sub["id"])[0]["mrr_after"] == 0  # trials are not revenue
    no_trial = shop.subscribe("pro", trial_days=0)
    assert no_trial["status"] == "active" and no_trial["trial_end_at"] is None


def test_mid_period_upgrade_prorates_to_the_cent_when_changed_immediately(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("starter")
    shop.advance(JAN_11)
    body = {"price_id": shop.price_id("pro"), "proration": "immediate"}
    preview = shop.action(sub["id"], "change/preview", body)
    assert preview.status_code == 200, preview.json
    # 19.00 × 21/31 = 12.8709… → 12.87 back; 49.00 × 21/31 = 33.1935… → 33.19 owed
    assert [(line["kind"], line["amount"]) for line in preview.json["lines"]] == [
        ("proration_credit", -1287),
        ("proration_charge", 3319),
    ]
    assert preview.json["total"] == 2032
    assert all(line["starts_on"] == "2026-01-11" for line in preview.json["lines"])
    assert [c["amount"] for c in shop.charges(sub["id"])] == [1900]  # a preview writes nothing
    assert len(shop.history(sub["id"])) == 1

    changed = shop.action(sub["id"], "change", body)
    assert changed.status_code == 200, changed.json
    assert changed.json["price_id"] == shop.price_id("pro")
    assert changed.json["current_period_end_at"] == FEB_1_BERLIN  # same period
    charges = shop.charges(sub["id"])
    assert sorted(c["amount"] for c in charges) == [-1287, 1900, 3319]
    last = shop.history(sub["id"])[-1]
    assert last["event"] == "change"
    assert (last["old_price_id"], last["new_price_id"]) == (
        shop.price_id("starter"),
        shop.price_id("pro"),
    )
    assert (last["mrr_before"], last["mrr_after"]) == (1900, 4900)
    assert last["detail"]["proration_total"] == 2032


def test_seat_change_prorates_both_quantities_when_price_is_per_seat(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("seat", quantity=2)
    assert [c["amount"] for c in shop.charges(sub["id"])] == [2000]
    shop.advance(JAN_11)
    resp = shop.action(sub["id"], "change", {"quantity": 5})
    assert resp.status_code == 200, resp.json
    # 20.00 × 21/31 = 13.548… → 13.55 back; 50.00 × 21/31 = 33.870… → 33.87 owed
    assert sorted(c["amount"] for c in shop.charges(sub["id"])) == [-1355, 2000, 3387]
    last = shop.history(sub["id"])[-1]
    assert (last["old_quantity"], last["new_quantity"]) == (2, 5)
    assert (last["mrr_before"], last["mrr_after"]) == (2000, 5000)


def test_interval_change_moves_the_anchor_when_changed_to_yearly_immediately(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("pro")
    shop.advance(JAN_11)
    resp = shop.action(sub["id"], "change", {"price_id": shop.price_id("pro_yearly")})
    assert resp.status_code == 200, resp.json
    assert resp.json["billing_anchor_on"] == "2026-01-11"
    assert resp.json["current_period_end_at"] == "2027-01-10T23:00:00+00:00"
    charges = shop.charges(sub["id"])
    assert [(c["kind"], c["amount"]) for c in charges] == [
        ("recurring", 4900),
        ("proration_credit", -3319),
        ("recurring", 49000),
    ]
    assert charges[-1]["starts_on"] == "2026-01-11" and charges[-1]["ends_on"] == "2027-01-11"
    assert shop.history(sub["id"])[-1]["mrr_after"] == 4083  # 490.00 / 12 = 40.8333…


def test_scheduled_downgrade_applies_at_period_end_when_proration_is_period_end(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("pro")
    shop.advance(JAN_11)
    body = {"price_id": shop.price_id("starter"), "proration": "period_end"}
    preview = shop.action(sub["id"], "change/preview", body)
    assert preview.json["lines"] == [] and preview.json["effective_at"] == FEB_1_BERLIN
    resp = shop.action(sub["id"], "change", body)
    assert resp.status_code == 200, resp.json
    assert resp.json["price_id"] == shop.price_id("pro")  # nothing changes before the end
    assert resp.json["scheduled_change"] == {"price_id": shop.price_id("starter"), "quantity": 1}
    assert [c["amount"] for c in shop.charges(sub["id"])] == [4900]

    shop.advance("2026-01-31T22:59:59Z")  # one second before midnight in Berlin
    assert shop.get(sub["id"])["price_id"] == shop.price_id("pro")
    shop.advance("2026-02-01T08:00:00Z")
    after = shop.get(sub["id"])
    assert after["price_id"] == shop.price_id("starter") and after["scheduled_change"] is None
    assert after["current_period_start_at"] == FEB_1_BERLIN
    assert after["current_period_end_at"] == MAR_1_BERLIN
    history = shop.history(sub["id"])
    assert [h["event"] for h in history] == [
        "create",
        "schedule_change",
        "apply_scheduled_change",
        "renew",
    ]
    applied, renewed = history[2], history[3]
    assert applied["occurred_at"] == FEB_1_BERLIN and renewed["occurred_at"] == FEB_1_BERLIN
    assert applied["recorded_at"] == "2026-02-01T08:00:00+00:00"
    assert (applied["mrr_before"], applied["mrr_after"]) == (4900, 1900)
    assert applied["actor"] == "system"
    charges = shop.charges(sub["id"])
    assert [(c["amount"], c["starts_on"], c["ends_on"]) for c in charges] == [
        (4900, "2026-01-01", "2026-02-01"),
        (1900, "2026-02-01", "2026-03-01"),
    ]


def test_cancel_at_period_end_ends_subscription_at_boundary_when_clock_passes_it(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("starter")
    resp = shop.action(sub["id"], "cancel", {"at_period_end": True})
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "active" and resp.json["cancel_at_period_end"] is True
    again = shop.action(sub["id"], "cancel", {"at_period_end": True})
    assert again.status_code == 409
    assert again.json["code"] == "subscription_cancellation_scheduled"
    shop.advance("2026-02-02T00:00:00Z")
    ended = shop.get(sub["id"])
    assert ended["status"] == "canceled" and ended["ended_at"] == FEB_1_BERLIN
    assert ended["current_period_start_at"] is None
    assert [h["event"] for h in shop.history(sub["id"])] == [
        "create",
        "schedule_cancel",
        "period_end_cancel",
    ]
    assert shop.history(sub["id"])[-1]["mrr_after"] == 0
    assert [c["amount"] for c in shop.charges(sub["id"])] == [1900]  # no renewal


def test_uncancel_keeps_subscription_renewing_when_cancellation_was_scheduled(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("starter")
    refused = shop.action(sub["id"], "uncancel")
    assert refused.status_code == 409
    assert refused.json["code"] == "subscription_not_scheduled_to_cancel"
    shop.action(sub["id"], "cancel", {"at_period_end": True})
    resp = shop.action(sub["id"], "uncancel")
    assert resp.status_code == 200 and resp.json["cancel_at_period_end"] is False
    shop.advance("2026-02-02T00:00:00Z")
    assert shop.get(sub["id"])["status"] == "active"
    assert [h["event"] for h in shop.history(sub["id"])][-1] == "renew"


def test_immediate_cancel_credits_unused_days_when_prorate_is_requested(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("starter")
    shop.advance(JAN_11)
    resp = shop.action(sub["id"], "cancel", {"prorate": True})
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "canceled"
    assert resp.json["ended_at"] == "2026-01-11T09:00:00+00:00"
    assert [c["amount"] for c in shop.charges(sub["id"])] == [1900, -1287]
    last = shop.history(sub["id"])[-1]
    assert last["event"] == "cancel" and (last["mrr_before"], last["mrr_after"]) == (1900, 0)
    shop.advance("2026-03-01T00:00:00Z")
    assert len(shop.history(sub["id"])) == 2  # a canceled subscription does not renew


def test_cancelling_a_canceled_subscription_is_refused_when_repeated(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("starter")
    canceled = shop.action(sub["id"], "cancel").json
    history = shop.history(sub["id"])
    for action, body in (
        ("cancel", {}),
        ("cancel", {"at_period_end": True}),
        ("change", {"quantity": 1, "proration": "period_end"}),
        ("change", {"price_id": shop.price_id("pro")}),
        ("pause", {}),
        ("resume", {}),
        ("uncancel", {}),
        ("payment_method", {"has_payment_method": False}),
    ):
        resp = shop.action(sub["id"], action, body)
        assert resp.status_code == 409, (action, resp.json)
        assert resp.mimetype == "application/problem+json"
        assert resp.json["code"] == "invalid_subscription_transition", action
    _unchanged(shop, canceled, history)


def test_pause_credits_and_resume_charges_remaining_days_when_paused_mid_period(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("starter")
    shop.advance(JAN_11)
    paused = shop.action(sub["id"], "pause")
    assert paused.status_code == 200, paused.json
    assert paused.json["status"] == "paused" and paused.json["current_period_end_at"] is None
    shop.advance("2026-03-05T09:00:00Z")  # paused subscriptions do not renew
    assert shop.get(sub["id"])["status"] == "paused"
    shop.advance("2026-03-21T09:00:00Z")
    resumed = shop.action(sub["id"], "resume")
    assert resumed.status_code == 200, resumed.json
    assert resumed.json["status"] == "active"
    assert resumed.json["current_period_start_at"] == MAR_1_BERLIN  # the anchor's period
    # 19.00 × 21/31 back on 11 Jan; 19.00 × 11/31 = 6.7419… → 6.74 owed from 21 Mar
    assert [(c["kind"], c["amount"]) for c in shop.charges(sub["id"])] == [
        ("recurring", 1900),
        ("proration_credit", -1287),
        ("proration_charge", 674),
    ]
    assert [(h["event"], h["mrr_after"]) for h in shop.history(sub["id"])] == [
        ("create", 1900),
        ("pause", 0),
        ("resume", 1900),
    ]


def test_pause_is_refused_when_cancellation_is_scheduled(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("starter")
    scheduled = shop.action(sub["id"], "cancel", {"at_period_end": True}).json
    history = shop.history(sub["id"])
    resp = shop.action(sub["id"], "pause")
    assert resp.status_code == 409 and resp.json["code"] == "subscription_cancellation_scheduled"
    _unchanged(shop, scheduled, history)


def test_bad_change_is_refused_and_changes_nothing_when_input_is_wrong(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("starter")
    client.patch(
        f"/v1/prices/{shop.price_id('business')}",
        json={"status": "archived"},
        headers=shop.headers,
    )
    client.patch(
        f"/v1/plans/{shop.plans['team']['id']}", json={"status": "archived"}, headers=shop.headers
    )
    history = shop.history(sub["id"])
    cases = [
        ({"price_id": shop.price_id("business")}, 409, "price_archived"),
        ({"price_id": shop.price_id("seat"), "quantity": 2}, 409, "plan_archived"),
        ({"price_id": shop.price_id("pro_usd")}, 422, "price_currency_mismatch"),
        ({"quantity": 0}, 422, "validation_failed"),
        ({"quantity": -3}, 422, "validation_failed"),
        ({"quantity": 2}, 422, "quantity_requires_per_seat_price"),
        ({"price_id": shop.price_id("starter")}, 422, "subscription_change_empty"),
        ({"proration": "sometime", "quantity": 1}, 422, "validation_failed"),
        ({}, 422, "validation_failed"),
        ({"price_id": "price_nope"}, 404, "price_not_found"),
    ]
    for body, status, code in cases:
        for action in ("change", "change/preview"):
            resp = shop.action(sub["id"], action, body)
            assert (resp.status_code, resp.json["code"]) == (status, code), (action, body)
    _unchanged(shop, sub, history)
    assert [c["amount"] for c in shop.charges(sub["id"])] == [1900]


def test_create_is_refused_when_price_or_quantity_is_not_sellable(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    client.patch(
        f"/v1/products/{shop.plans['pro']['product_id']}",
        json={"status": "archived"},
        headers=shop.headers,
    )
    customer = shop.customer()
    for body, status, code in (
        ({"price_id": shop.price_id("pro")}, 409, "product_archived"),
        ({"price_id": shop.price_id("seat"), "quantity": 0}, 422, "validation_failed"),
        ({"price_id": "price_nope"}, 404, "price_not_found"),
        ({"price_id": shop.price_id("pro"), "customer_id": "cus_nope"}, 404, "customer_not_found"),
    ):
        resp = client.post(
            "/v1/subscriptions", json={"customer_id": customer, **body}, headers=shop.headers
        )
        assert (resp.status_code, resp.json["code"]) == (status, code), body
    assert client.get("/v1/subscriptions", headers=shop.headers).json["data"] == []


def test_resubscribing_is_a_reactivation_when_customer_had_canceled(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    first = shop.subscribe("starter")
    customer_id = first["customer_id"]
    second = shop.subscribe("pro", customer_id=customer_id)  # while the first runs: new
    assert shop.history(second["id"])[0]["event"] == "create"
    shop.action(first["id"], "cancel")
    shop.action(second["id"], "cancel")
    third = shop.subscribe("pro", customer_id=customer_id)
    (row,) = shop.history(third["id"])
    assert row["event"] == "reactivation" and row["mrr_after"] == 4900


def test_history_lists_newest_first_with_cursor_when_paginated(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("seat", quantity=1)
    for quantity in (2, 3, 4):
        assert shop.action(sub["id"], "change", {"quantity": quantity}).status_code == 200
    page = client.get(f"/v1/subscriptions/{sub['id']}/history?limit=2", headers=shop.headers)
    assert [h["seq"] for h in page.json["data"]] == [4, 3] and page.json["has_more"] is True
    cursor = page.json["data"][-1]["id"]
    rest = client.get(
        f"/v1/subscriptions/{sub['id']}/history?limit=2&starting_after={cursor}",
        headers=shop.headers,
    )
    assert [h["seq"] for h in rest.json["data"]] == [2, 1] and rest.json["has_more"] is False


def test_subscriptions_need_subscriptions_scope_when_key_is_limited(
    client: FlaskClient, tenant: TenantCtx, make_tenant: Any
) -> None:
    sub = create_subscription(client, tenant)
    reader = make_tenant("Leser GmbH", scopes=["subscriptions:read"])
    assert client.get("/v1/subscriptions", headers=reader.headers).status_code == 200
    resp = client.post("/v1/subscriptions", json={}, headers=reader.headers)
    assert resp.status_code in (403, 422)
    resp = client.post(f"/v1/subscriptions/{sub['id']}/cancel", json={}, headers=reader.headers)
    assert resp.status_code in (403, 404)


def test_real_time_subscription_uses_wall_clock_when_customer_has_no_test_clock(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    from datetime import UTC, datetime, timedelta

    before = datetime.now(UTC)
    sub = create_subscription(client, tenant)
    started = datetime.fromisoformat(sub["started_at"])
    assert before - timedelta(seconds=1) <= started <= datetime.now(UTC)
    assert sub["test_clock_id"] is None and sub["status"] == "active"


def test_history_rows_cannot_be_changed_or_deleted_when_using_the_orm(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    create_subscription(client, tenant)
    with app.app_context():
        session = db.session
        tenancy.set_tenant(session, tenant.tenant_id)
        row = session.scalars(sa.select(SubscriptionHistory)).one()
        row.event = "tampered"
        with pytest.raises(HistoryIsAppendOnlyError):
            session.flush()
        session.rollback()
        session.delete(session.scalars(sa.select(SubscriptionHistory)).one())
        with pytest.raises(HistoryIsAppendOnlyError):
            session.flush()
        session.rollback()
        with pytest.raises(HistoryIsAppendOnlyError):
            session.execute(sa.update(SubscriptionHistory).values(event="tampered"))
        with pytest.raises(HistoryIsAppendOnlyError):
            session.execute(sa.delete(SubscriptionHistory))
        session.rollback()
        assert session.scalars(sa.select(SubscriptionHistory.event)).all() == ["create"]
        db.session.remove()


@POSTGRES_ONLY
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE subscription_history SET mrr_after = 0",
        "DELETE FROM subscription_history",
        "TRUNCATE subscription_history",
    ],
)
def test_app_role_may_not_rewrite_history_when_on_postgres(
    app: Flask, client: FlaskClient, tenant: TenantCtx, statement: str
) -> None:
    create_subscription(client, tenant)
    with app.app_context():
        session = db.session
        tenancy.set_tenant(session, tenant.tenant_id)
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            session.execute(sa.text(statement))
        session.rollback()
        db.session.remove()


def test_losing_change_gets_409_and_writes_nothing_when_another_change_committed_first(
    client: FlaskClient,
    tenant: TenantCtx,
    owner_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from saas.subscriptions import services

    shop = make_shop(client, tenant)
    sub = shop.subscribe("seat", quantity=1)
    original = services._load_subscription

    def load_then_lose_the_race(session: Any, subscription_id: str) -> Any:
        loaded = original(session, subscription_id)
        # another request commits its change between our read and our write
        with owner_engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE subscriptions SET version = version + 1, quantity = 7 WHERE id = :i"
                ),
                {"i": subscription_id},
            )
        return loaded

    monkeypatch.setattr(services, "_load_subscription", load_then_lose_the_race)
    resp = shop.action(sub["id"], "change", {"quantity": 3})
    monkeypatch.undo()
    assert resp.status_code == 409, resp.json
    assert resp.json["code"] == "subscription_conflict"
    assert shop.get(sub["id"])["quantity"] == 7  # the winner's write stands
    assert len(shop.history(sub["id"])) == 1
    assert [c["amount"] for c in shop.charges(sub["id"])] == [1000]


def test_change_is_charged_in_the_renewed_period_when_a_renewal_was_due_but_not_run(
    client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    from datetime import UTC, datetime

    from saas.testclocks.models import TestClock

    shop = make_shop(client, tenant)
    sub = shop.subscribe("seat", quantity=1)
    # the clock passes the period end without the time step running (a lagging worker): the
    # change renews first, then prorates against the period the renewal opened, not the one
    # that was open when the subscription was read
    clocks: sa.Table = TestClock.__table__  # type: ignore[assignment]
    with owner_engine.begin() as conn:
        conn.execute(
            sa.update(clocks)
            .where(clocks.c.id == shop.clock_id)
            .values(frozen_time=datetime(2026, 2, 11, 9, tzinfo=UTC))
        )
    resp = shop.action(sub["id"], "change", {"quantity": 3})
    assert resp.status_code == 200, resp.json
    assert [h["event"] for h in shop.history(sub["id"])] == ["create", "renew", "change"]
    charges = shop.charges(sub["id"])
    # 10.00 a seat; 18 of February's 28 days remain: 6.43 back, 3 × 6.43 = 19.29 owed
    assert [(c["kind"], c["amount"]) for c in charges] == [
        ("recurring", 1000),
        ("recurring", 1000),
        ("proration_credit", -643),
        ("proration_charge", 1929),
    ]
    renewed = charges[1]["period_id"]
    assert renewed is not None and renewed != charges[0]["period_id"]
    assert [c["period_id"] for c in charges[2:]] == [renewed, renewed]


def test_concurrent_changes_do_not_interleave_when_sent_at_once(
    app: Flask, tenant: TenantCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from saas.subscriptions import services

    shop = make_shop(app.test_client(), tenant)
    sub = shop.subscribe("seat", quantity=1)
    original = services._load_subscription
    both_read = threading.Barrier(2, timeout=20)

    def load_and_wait(session: Any, subscription_id: str) -> Any:
        loaded = original(session, subscription_id)
        both_read.wait()  # both requests have read version n before either writes
        return loaded

    monkeypatch.setattr(services, "_load_subscription", load_and_wait)
    results: dict[int, Any] = {}

    def change(quantity: int) -> None:
        resp = app.test_client().post(
            f"/v1/subscriptions/{sub['id']}/change",
            json={"quantity": quantity},
            headers=shop.headers,
        )
        results[quantity] = (resp.status_code, resp.json.get("code"))

    threads = [threading.Thread(target=change, args=(q,)) for q in (3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    monkeypatch.undo()
    statuses = sorted(results.values(), key=lambda r: r[0])
    assert [s[0] for s in statuses] == [200, 409], results
    assert statuses[1][1] == "subscription_conflict"
    winner = next(q for q, r in results.items() if r[0] == 200)
    after = shop.get(sub["id"])
    assert after["quantity"] == winner
    history = shop.history(sub["id"])
    assert [h["seq"] for h in history] == [1, 2]
    assert history[-1]["new_quantity"] == winner
