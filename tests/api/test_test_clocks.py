"""Test clocks, and subscriptions living on them end to end: trials ending, renewals on the
anchor day in the tenant's time zone, and advancing that leaves other clocks alone."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api.test_subscriptions import create_subscription, make_shop
from tests.conftest import CUSTOMER, TenantCtx


def _clock(client: FlaskClient, t: TenantCtx, frozen_time: str) -> Any:
    return client.post("/v1/test_clocks", json={"frozen_time": frozen_time}, headers=t.headers)


def test_test_clock_is_created_read_and_advanced_when_time_moves_forward(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    created = _clock(client, tenant, "2026-01-01T12:00:00+01:00")
    assert created.status_code == 201, created.json
    clock = created.json
    assert clock["id"].startswith("clock_") and clock["object"] == "test_clock"
    assert clock["frozen_time"] == "2026-01-01T11:00:00+00:00"  # stored as UTC
    assert clock["status"] == "ready" and clock["livemode"] is False
    assert client.get(f"/v1/test_clocks/{clock['id']}", headers=tenant.headers).json == clock
    listed = client.get("/v1/test_clocks", headers=tenant.headers).json["data"]
    assert [c["id"] for c in listed] == [clock["id"]]
    moved = client.post(
        f"/v1/test_clocks/{clock['id']}/advance",
        json={"frozen_time": "2026-02-01T00:00:00Z"},
        headers=tenant.headers,
    )
    assert moved.status_code == 200 and moved.json["frozen_time"] == "2026-02-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("frozen_time", "code"),
    [
        ("2026-01-01T11:00:00Z", "test_clock_time_not_later"),  # the same instant
        ("2025-12-31T23:59:59Z", "test_clock_time_not_later"),
        ("2026-02-01T00:00:00", "validation_failed"),  # no offset: ambiguous
        ("next tuesday", "validation_failed"),
    ],
)
def test_advance_is_refused_when_time_does_not_move_forward(
    client: FlaskClient, tenant: TenantCtx, frozen_time: str, code: str
) -> None:
    clock = _clock(client, tenant, "2026-01-01T11:00:00Z").json
    resp = client.post(
        f"/v1/test_clocks/{clock['id']}/advance",
        json={"frozen_time": frozen_time},
        headers=tenant.headers,
    )
    assert resp.status_code == 422 and resp.json["code"] == code
    assert client.get(f"/v1/test_clocks/{clock['id']}", headers=tenant.headers).json == clock


def test_test_clocks_are_refused_when_key_is_live(client: FlaskClient, make_tenant: Any) -> None:
    live = make_tenant("Live GmbH", livemode=True)
    resp = _clock(client, live, "2026-01-01T00:00:00Z")
    assert resp.status_code == 403 and resp.json["code"] == "test_clock_livemode"


def test_customer_cannot_join_a_clock_when_it_is_not_the_tenants(
    client: FlaskClient, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    foreign = _clock(client, other_tenant, "2026-01-01T00:00:00Z").json
    resp = client.post(
        "/v1/customers", json={**CUSTOMER, "test_clock_id": foreign["id"]}, headers=tenant.headers
    )
    assert resp.status_code == 404 and resp.json["code"] == "test_clock_not_found"


@pytest.mark.parametrize(
    ("has_payment_method", "behavior", "status"),
    [
        (True, "cancel", "active"),
        (False, "cancel", "canceled"),
        (False, "pause", "paused"),
        (False, "convert", "active"),
        (True, "pause", "active"),
    ],
)
def test_trial_ends_on_day_14_per_plan_setting_when_clock_reaches_it(
    client: FlaskClient,
    tenant: TenantCtx,
    has_payment_method: bool,
    behavior: str,
    status: str,
) -> None:
    shop = make_shop(client, tenant, trial_days=14, trial_end_behavior=behavior)
    sub = shop.subscribe("pro", has_payment_method=has_payment_method)
    assert sub["status"] == "trialing"
    trial_end = "2026-01-14T23:00:00+00:00"  # day 14: 15 Jan, 00:00 in Berlin
    assert sub["trial_end_at"] == trial_end
    shop.advance("2026-01-14T22:59:59Z")  # day 13, one second before midnight in Berlin
    assert shop.get(sub["id"])["status"] == "trialing"
    shop.advance("2026-01-15T08:00:00Z")
    after = shop.get(sub["id"])
    assert after["status"] == status
    last = shop.history(sub["id"])[-1]
    assert last["occurred_at"] == trial_end and last["actor"] == "system"
    assert last["old_status"] == "trialing" and last["new_status"] == status
    assert (
        last["event"]
        == {
            "active": "trial_end_convert",
            "canceled": "trial_end_cancel",
            "paused": "trial_end_pause",
        }[status]
    )
    charges = shop.charges(sub["id"])
    if status == "active":
        assert after["current_period_start_at"] == trial_end
        assert after["current_period_end_at"] == "2026-02-14T23:00:00+00:00"
        assert [(c["amount"], c["starts_on"], c["ends_on"]) for c in charges] == [
            (4900, "2026-01-15", "2026-02-15")
        ]
        assert (last["mrr_before"], last["mrr_after"]) == (0, 4900)
    else:
        assert charges == []
        assert after["current_period_start_at"] is None
        assert (last["mrr_before"], last["mrr_after"]) == (0, 0)
    if status == "canceled":
        assert after["ended_at"] == trial_end


def test_trial_paused_at_its_end_resumes_with_remaining_days_when_resumed(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant, trial_days=14, trial_end_behavior="pause")
    sub = shop.subscribe("pro", has_payment_method=False)
    shop.advance("2026-01-20T09:00:00Z")
    assert shop.get(sub["id"])["status"] == "paused"
    resp = shop.action(sub["id"], "resume")
    assert resp.status_code == 200, resp.json
    # the anchor is the trial's end (15 Jan): 26 of the 31 days to 15 Feb remain
    assert resp.json["current_period_start_at"] == "2026-01-14T23:00:00+00:00"
    assert [c["amount"] for c in shop.charges(sub["id"])] == [4110]  # 49.00 × 26/31 = 41.096…


def test_jan_31_subscription_renews_on_feb_28_and_mar_31_when_billed_in_berlin(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant, frozen_time="2026-01-30T23:30:00Z")  # 31 Jan, 00:30 Berlin
    sub = shop.subscribe("starter")
    assert sub["billing_anchor_on"] == "2026-01-31"
    feb_28 = "2026-02-27T23:00:00+00:00"  # midnight in Berlin (CET)
    mar_31 = "2026-03-30T22:00:00+00:00"  # midnight in Berlin (CEST since 29 March)
    apr_30 = "2026-04-29T22:00:00+00:00"
    assert sub["current_period_end_at"] == feb_28
    shop.advance("2026-02-27T22:59:59Z")
    assert shop.get(sub["id"])["current_period_end_at"] == feb_28
    shop.advance("2026-02-27T23:00:00Z")  # exactly the boundary
    assert shop.get(sub["id"])["current_period_end_at"] == mar_31
    shop.advance("2026-04-02T00:00:00Z")
    after = shop.get(sub["id"])
    assert after["current_period_start_at"] == mar_31
    assert after["current_period_end_at"] == apr_30
    renewals = [h for h in shop.history(sub["id"]) if h["event"] == "renew"]
    assert [h["occurred_at"] for h in renewals] == [feb_28, mar_31]
    assert [(c["starts_on"], c["ends_on"], c["amount"]) for c in shop.charges(sub["id"])] == [
        ("2026-01-31", "2026-02-28", 1900),
        ("2026-02-28", "2026-03-31", 1900),
        ("2026-03-31", "2026-04-30", 1900),
    ]


def test_advancing_far_renews_once_per_period_in_order_when_many_periods_pass(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    sub = shop.subscribe("pro")
    yearly = shop.subscribe("pro_yearly")
    shop.advance("2027-01-01T12:00:00Z")
    history = shop.history(sub["id"])
    assert [h["event"] for h in history] == ["create"] + ["renew"] * 12
    occurred = [h["occurred_at"] for h in history[1:]]
    assert occurred == sorted(occurred) and len(set(occurred)) == 12
    starts = [c["starts_on"] for c in shop.charges(sub["id"])]
    assert starts == [f"2026-{month:02d}-01" for month in range(1, 13)] + ["2027-01-01"]
    assert [h["event"] for h in shop.history(yearly["id"])] == ["create", "renew"]


def test_advancing_a_clock_leaves_other_subscriptions_alone_when_not_on_it(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant)
    other = make_shop(client, tenant)
    on_clock = shop.subscribe("starter")
    on_other_clock = other.subscribe("starter")
    real_time = create_subscription(client, tenant, shop.price_id("starter"))
    shop.advance("2026-03-15T00:00:00Z")
    assert len(shop.history(on_clock["id"])) == 3
    assert len(shop.history(on_other_clock["id"])) == 1
    assert len(shop.history(real_time["id"])) == 1
