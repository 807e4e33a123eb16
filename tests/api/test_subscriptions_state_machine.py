"""Random sequences of subscription operations through the API, on a test clock (SQLite only,
to keep the suite fast; the backends share every line of the code under test).

After every step, for every subscription: the state is one of the allowed ones; an accepted
operation moved it as the lifecycle table says and a refused one changed nothing; the history
is append-only (what was there is still there, unchanged), numbered without gaps and chained
(each row starts where the previous ended, the last ends where the subscription is); MRR is 0
in every state that does not pay; at most one period is open (exactly one while trialing,
active or past due), it contains the clock's time, and periods never overlap.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from saas.subscriptions.lifecycle import (
    COUNTS_FOR_MRR,
    HAS_OPEN_PERIOD,
    Event,
    State,
    is_allowed,
    next_state,
)
from tests.api.test_subscriptions import Shop, make_shop

PRICES = ["starter", "pro", "business", "pro_yearly", "pro_usd", "seat"]
# every 4xx an operation may legitimately get; anything else (or a 5xx) fails the machine
EXPECTED_REFUSALS = {
    "invalid_subscription_transition",
    "subscription_not_scheduled_to_cancel",
    "subscription_cancellation_scheduled",
    "subscription_change_empty",
    "price_currency_mismatch",
    "quantity_requires_per_seat_price",
    "validation_failed",
}
ACTION_EVENTS = {
    "pause": Event.PAUSE,
    "resume": Event.RESUME,
    "uncancel": Event.UNCANCEL,
}


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


class SubscriptionMachine(RuleBasedStateMachine):
    # the test's fixtures, handed over before the machine runs (Hypothesis builds instances)
    fixtures: ClassVar[dict[str, Any]] = {}

    subs = Bundle("subs")

    def __init__(self) -> None:
        super().__init__()
        self.client: FlaskClient = self.fixtures["client"]
        self.engine: sa.Engine = self.fixtures["engine"]
        # one catalog for all examples (it is not what varies); a fresh clock for each
        if "shop" not in self.fixtures:
            self.fixtures["shop"] = make_shop(
                self.client,
                self.fixtures["make_tenant"]("Zufall GmbH"),
                trial_days=14,
                trial_end_behavior="pause",
            )
        catalog: Shop = self.fixtures["shop"]
        self.now = datetime(2026, 1, 30, 23, 30, tzinfo=UTC)
        clock = self.client.post(
            "/v1/test_clocks", json={"frozen_time": self.now.isoformat()}, headers=catalog.headers
        )
        assert clock.status_code == 201, clock.json
        self.shop = dataclasses.replace(catalog, clock_id=clock.json["id"])
        self.ids: list[str] = []
        self.seen_history: dict[str, list[Any]] = {}

    # --- operations -----------------------------------------------------------------------

    @initialize(target=subs)
    def paying_subscription(self) -> str:
        return self._subscribe("starter", has_payment_method=True, trial_days=0, quantity=1)

    @initialize(target=subs)
    def trial_that_pauses(self) -> str:
        # no payment method and the plan says `pause`: paused once the clock passes day 3
        return self._subscribe("seat", has_payment_method=False, trial_days=3, quantity=2)

    @rule(
        target=subs,
        price=st.sampled_from(PRICES),
        has_payment_method=st.booleans(),
        trial_days=st.sampled_from([None, 0, 3]),
        quantity=st.sampled_from([1, 1, 3]),
    )
    def subscribe(
        self, price: str, has_payment_method: bool, trial_days: int | None, quantity: int
    ) -> str:
        return self._subscribe(price, has_payment_method, trial_days, quantity)

    def _subscribe(
        self, price: str, has_payment_method: bool, trial_days: int | None, quantity: int
    ) -> str:
        customer = self.shop.customer()
        body = {
            "customer_id": customer,
            "price_id": self.shop.price_id(price),
            "has_payment_method": has_payment_method,
            "quantity": quantity,
        }
        if trial_days is not None:
            body["trial_days"] = trial_days
        resp = self.client.post("/v1/subscriptions", json=body, headers=self.shop.headers)
        if quantity != 1 and price != "seat":
            assert resp.status_code == 422, resp.json
            assert resp.json["code"] == "quantity_requires_per_seat_price"
            # a subscription of an existing kind stands in, so the bundle always grows
            return self._subscribe(price, has_payment_method, trial_days, 1)
        assert resp.status_code == 201, resp.json
        self.ids.append(resp.json["id"])
        return str(resp.json["id"])

    @rule(
        sub=subs,
        price=st.sampled_from([None, *PRICES]),
        quantity=st.sampled_from([None, 0, 1, 2]),
        proration=st.sampled_from(["immediate", "period_end"]),
        preview=st.booleans(),
    )
    def change(
        self, sub: str, price: str | None, quantity: int | None, proration: str, preview: bool
    ) -> None:
        body: dict[str, Any] = {"proration": proration}
        if price is not None:
            body["price_id"] = self.shop.price_id(price)
        if quantity is not None:
            body["quantity"] = quantity
        event = Event.CHANGE if proration == "immediate" else Event.SCHEDULE_CHANGE
        self._act(sub, "change/preview" if preview else "change", body, event, preview=preview)

    @rule(sub=subs, at_period_end=st.booleans(), prorate=st.booleans())
    def cancel(self, sub: str, at_period_end: bool, prorate: bool) -> None:
        body = {"at_period_end": at_period_end, "prorate": prorate and not at_period_end}
        event = Event.SCHEDULE_CANCEL if at_period_end else Event.CANCEL
        self._act(sub, "cancel", body, event)

    @rule(sub=subs, action=st.sampled_from(sorted(ACTION_EVENTS)))
    def simple_action(self, sub: str, action: str) -> None:
        self._act(sub, action, {}, ACTION_EVENTS[action])

    @rule(sub=subs, value=st.booleans())
    def payment_method(self, sub: str, value: bool) -> None:
        before = self.shop.get(sub)
        event = (
            Event.ACTIVATE
            if before["status"] == State.INCOMPLETE and value
            else Event.UPDATE_PAYMENT_METHOD
        )
        self._act(sub, "payment_method", {"has_payment_method": value}, event)

    @rule(days=st.integers(min_value=0, max_value=70), hours=st.integers(0, 23))
    def advance(self, days: int, hours: int) -> None:
        self.now += timedelta(days=days, hours=hours, minutes=1)
        self.shop.advance(self.now.isoformat())

    def _act(
        self, sub: str, action: str, body: dict[str, Any], event: Event, *, preview: bool = False
    ) -> None:
        before = self.shop.get(sub)
        history = self.shop.history(sub)
        resp = self.shop.action(sub, action, body)
        assert resp.status_code < 500, resp.json
        if resp.status_code >= 400:
            assert resp.mimetype == "application/problem+json"
            assert resp.json["code"] in EXPECTED_REFUSALS, resp.json
            if not is_allowed(before["status"], event) and resp.json["code"] != "validation_failed":
                # the body is checked first; then the state, before anything else
                assert resp.json["code"] == "invalid_subscription_transition", resp.json
            assert self.shop.get(sub) == before, "a refused request changed the subscription"
            assert self.shop.history(sub) == history, "a refused request wrote history"
            return
        assert is_allowed(before["status"], event), (before["status"], event)
        after = self.shop.get(sub)
        if preview:
            assert after == before and self.shop.history(sub) == history
            return
        assert after["status"] == next_state(before["status"], event)
        noop = event == Event.UPDATE_PAYMENT_METHOD and before["has_payment_method"] == body.get(
            "has_payment_method"
        )
        assert len(self.shop.history(sub)) == len(history) + (0 if noop else 1)

    # --- invariants (read straight from the database: cheaper than the API for every row) --

    def _rows(self, sql: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(sql),
                    {"t": self.shop.tenant.tenant_id, "c": self.shop.clock_id},
                ).all()
            )

    @invariant()
    def subscriptions_are_consistent(self) -> None:
        subs = {
            r.id: r
            for r in self._rows(
                "SELECT id, status, price_id, quantity, current_period_end_at, next_action_at "
                "FROM subscriptions WHERE tenant_id = :t AND test_clock_id = :c"
            )
        }
        assert set(subs) == set(self.ids)
        history: dict[str, list[Any]] = {sub_id: [] for sub_id in subs}
        for row in self._rows(
            "SELECT h.* FROM subscription_history h JOIN subscriptions s "
            "ON s.tenant_id = h.tenant_id AND s.id = h.subscription_id "
            "WHERE h.tenant_id = :t AND s.test_clock_id = :c ORDER BY h.subscription_id, h.seq"
        ):
            history[row.subscription_id].append(dict(row._mapping))
        periods: dict[str, list[Any]] = {sub_id: [] for sub_id in subs}
        for row in self._rows(
            "SELECT p.subscription_id, p.status, p.start_at, p.end_at "
            "FROM subscription_periods p JOIN subscriptions s "
            "ON s.tenant_id = p.tenant_id AND s.id = p.subscription_id "
            "WHERE p.tenant_id = :t AND s.test_clock_id = :c ORDER BY p.subscription_id, p.seq"
        ):
            periods[row.subscription_id].append(row)
        for sub_id, sub in subs.items():
            assert sub.status in {s.value for s in State}
            if sub.status in HAS_OPEN_PERIOD:  # time has caught up with it
                assert _naive(sub.next_action_at) > self._now
            else:
                assert sub.next_action_at is None
            self._check_history(sub, history[sub_id])
            self._check_periods(sub, periods[sub_id])

    @property
    def _now(self) -> datetime:
        return self.now.astimezone(UTC).replace(tzinfo=None)

    def _check_history(self, sub: Any, history: list[dict[str, Any]]) -> None:
        seen = self.seen_history.get(sub.id, [])
        assert history[: len(seen)] == seen, "history rows changed or disappeared"
        self.seen_history[sub.id] = history
        assert [h["seq"] for h in history] == list(range(1, len(history) + 1))
        assert history[0]["old_status"] is None
        assert history[0]["event"] in {"create", "reactivation"}
        for prev, row in itertools.pairwise(history):
            assert (row["old_status"], row["old_price_id"], row["old_quantity"]) == (
                prev["new_status"],
                prev["new_price_id"],
                prev["new_quantity"],
            )
            assert row["mrr_before"] == prev["mrr_after"]
        for row in history:
            if row["new_status"] not in COUNTS_FOR_MRR:
                assert row["mrr_after"] == 0
        last = history[-1]
        assert (last["new_status"], last["new_price_id"], last["new_quantity"]) == (
            sub.status,
            sub.price_id,
            sub.quantity,
        )

    def _check_periods(self, sub: Any, periods: list[Any]) -> None:
        open_periods = [p for p in periods if p.status == "open"]
        assert len(open_periods) == (1 if sub.status in HAS_OPEN_PERIOD else 0), periods
        for prev, nxt in itertools.pairwise(periods):
            assert _naive(nxt.start_at) >= _naive(prev.end_at), "periods overlap"
        for period in open_periods:
            assert _naive(period.start_at) <= self._now < _naive(period.end_at)


def _naive(value: Any) -> datetime:
    """SQLite hands back the stored UTC text; compare as naive UTC."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_subscription_invariants_hold_when_operations_come_in_random_order(
    client: FlaskClient, make_tenant: Any, owner_engine: sa.Engine
) -> None:
    SubscriptionMachine.fixtures = {
        "client": client,
        "make_tenant": make_tenant,
        "engine": owner_engine,
    }
    run_state_machine_as_test(
        SubscriptionMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
