"""Dunning end to end on a test clock: a failed payment makes the subscription `past_due` and
queues an e-mail; retries fall due on days 1, 3, 5 and 7 of the customer's clock; the last
failure cancels or writes off per the tenant's setting; a successful retry reactivates.

Failures are reported through `billing.dunning.hooks.on_payment_failed`, as the payments
module does. Retries collect through an injected collector (`ScriptedCollector`, a plain
function object, no mock library) that reports its outcome through the same hooks, the
contract `billing.payments.services.attempt_collection` follows.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.dunning import hooks
from billing.dunning.jobs import run_due_retries
from billing.dunning.models import DunningAttempt, DunningCase
from billing.dunning.services import case_for_invoice, default_collector, run_attempt
from billing.invoices.models import Invoice
from billing.invoices.services import mark_paid
from saas.events.models import Event
from saas.extensions import db
from saas.kernel.errors import ConflictError, UnavailableError
from saas.kernel.tasks import tenant_session
from saas.mail.models import OutboxMail
from saas.subscriptions.models import SubscriptionHistory
from tests.api.test_catalog import create_price
from tests.api.test_invoices import CUSTOMERS, finalize, make_draft
from tests.api.test_seller_profile import put_profile
from tests.api.test_subscriptions import create_subscription
from tests.conftest import TenantCtx

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Berlin


@dataclass
class Dunned:
    """A customer on a test clock with an active subscription and its open invoice."""

    client: FlaskClient
    tenant: TenantCtx
    app: Flask
    clock_id: str
    customer_id: str
    subscription_id: str
    invoice_id: str
    now: datetime = START

    def advance(self, to: datetime) -> None:
        resp = self.client.post(
            f"/v1/test_clocks/{self.clock_id}/advance",
            json={"frozen_time": to.isoformat()},
            headers=self.tenant.headers,
        )
        assert resp.status_code == 200, resp.json
        self.now = to

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.app.app_context(), tenant_session(db.engine, self.tenant.tenant_id) as session:
            yield session

    def fail_payment(self, code: str = "card_declined") -> None:
        with self.session() as session:
            invoice = session.scalars(sa.select(Invoice).where(Invoice.id == self.invoice_id)).one()
            hooks.on_payment_failed(
                session, invoice, at=self.now, code=code, message="Your card was declined."
            )
            session.commit()

    def run_retries(self, collector: ScriptedCollector) -> dict[str, int]:
        with self.app.app_context():
            # the wall clock is far from the test clock: only the clock's time may count
            return run_due_retries(
                db.engine, self.tenant.tenant_id, now=datetime.now(UTC), collector=collector
            )

    def subscription(self) -> dict[str, Any]:
        resp = self.client.get(
            f"/v1/subscriptions/{self.subscription_id}", headers=self.tenant.headers
        )
        return dict(resp.json)

    def invoice(self) -> dict[str, Any]:
        resp = self.client.get(f"/v1/invoices/{self.invoice_id}", headers=self.tenant.headers)
        return dict(resp.json)

    def case(self) -> DunningCase:
        with self.session() as session:
            case = case_for_invoice(session, self.invoice_id)
            assert case is not None
            return case

    def attempts(self) -> list[DunningAttempt]:
        with self.session() as session:
            return list(
                session.scalars(
                    sa.select(DunningAttempt)
                    .where(DunningAttempt.invoice_id == self.invoice_id)
                    .order_by(DunningAttempt.seq)
                )
            )

    def mails(self) -> list[OutboxMail]:
        with self.session() as session:
            return list(
                session.scalars(
                    sa.select(OutboxMail).order_by(OutboxMail.created_at, OutboxMail.id)
                )
            )

    def event_types(self) -> list[str]:
        with self.session() as session:
            return list(session.scalars(sa.select(Event.type).order_by(Event.id)))

    def history(self) -> list[SubscriptionHistory]:
        with self.session() as session:
            return list(
                session.scalars(
                    sa.select(SubscriptionHistory)
                    .where(SubscriptionHistory.subscription_id == self.subscription_id)
                    .order_by(SubscriptionHistory.seq)
                )
            )


@dataclass
class ScriptedCollector:
    """Collects by script: each call takes the next outcome (`fail`, `succeed`,
    `unavailable`) and reports it through the dunning hooks like the payments module."""

    outcomes: deque[str] = field(default_factory=deque)
    calls: list[tuple[str, datetime]] = field(default_factory=list)
    gate: threading.Event | None = None  # held closed: the call waits (concurrency tests)

    def __call__(self, session: Session, invoice_id: str, *, now: datetime) -> None:
        self.calls.append((invoice_id, now))
        if self.gate is not None:
            self.gate.wait(timeout=10)
        outcome = self.outcomes.popleft() if self.outcomes else "fail"
        invoice = session.scalars(sa.select(Invoice).where(Invoice.id == invoice_id)).one()
        if outcome == "pending":
            return  # an asynchronous method: the outcome comes later, by webhook
        if outcome == "unavailable":
            raise UnavailableError("the payment provider is unreachable", code="stripe_unavailable")
        if outcome == "succeed":
            mark_paid(session, invoice_id, {"note": "card"}, now=now)
            hooks.on_payment_succeeded(session, invoice, at=now)
            return
        hooks.on_payment_failed(
            session, invoice, at=now, code="card_declined", message="Your card was declined."
        )


def make_dunned(
    client: FlaskClient, app: Flask, tenant: TenantCtx, *, locale: str = "de-DE"
) -> Dunned:
    put_profile(client, tenant)
    clock = client.post(
        "/v1/test_clocks", json={"frozen_time": START.isoformat()}, headers=tenant.headers
    ).json
    body = {**CUSTOMERS["de_business"], "test_clock_id": clock["id"], "locale": locale}
    resp = client.post("/v1/customers", json=body, headers=tenant.headers)
    assert resp.status_code == 201, resp.json
    customer_id = resp.json["id"]
    price = create_price(client, tenant, unit_amount=4900)
    sub = create_subscription(client, tenant, price["id"], customer_id=customer_id)
    assert sub["status"] == "active"
    draft = make_draft(client, tenant, customer_id=customer_id)
    with app.app_context(), tenant_session(db.engine, tenant.tenant_id) as session:
        # what a billing run does: the invoice belongs to the subscription
        invoice = session.scalars(sa.select(Invoice).where(Invoice.id == draft["id"])).one()
        invoice.subscription_id = sub["id"]
        session.commit()
    finalize(client, tenant, draft["id"])
    return Dunned(client, tenant, app, clock["id"], customer_id, sub["id"], draft["id"])


@pytest.fixture
def dunned(client: FlaskClient, app: Flask, tenant: TenantCtx) -> Dunned:
    return make_dunned(client, app, tenant)


def put_settings(d: Dunned, **body: Any) -> dict[str, Any]:
    resp = d.client.put("/v1/dunning-settings", json=body, headers=d.tenant.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def _day(n: int, minutes: int = 1) -> datetime:
    return START + timedelta(days=n, minutes=minutes)


# --- the first failure --------------------------------------------------------------------


def test_failed_payment_makes_subscription_past_due_and_queues_mail_when_reported(
    dunned: Dunned,
) -> None:
    mrr_before = dunned.history()[-1].mrr_after
    dunned.fail_payment()

    assert dunned.subscription()["status"] == "past_due"
    last = dunned.history()[-1]
    assert (last.event, last.old_status, last.new_status) == (
        "payment_failed",
        "active",
        "past_due",
    )
    assert last.mrr_before == last.mrr_after == mrr_before  # past_due still counts for MRR
    assert last.detail["invoice_id"] == dunned.invoice_id
    case = dunned.case()
    assert (case.status, case.failures, case.last_failure_code) == ("open", 1, "card_declined")
    assert case.subscription_id == dunned.subscription_id
    assert [a.status for a in dunned.attempts()] == ["scheduled"] * 4
    [mail] = dunned.mails()
    assert mail.kind == "dunning.payment_failed" and mail.status == "pending"
    assert mail.to_address == CUSTOMERS["de_business"]["email"]
    assert mail.language == "de" and "Zahlung fehlgeschlagen" in mail.subject
    assert mail.subject.startswith("[TEST] ")  # a test-mode customer
    assert "03.03.2026" in mail.text_body  # the first retry, in German date format
    assert mail.text_body.startswith("Guten Tag Nordlicht Handels AG,")
    types = dunned.event_types()
    assert "subscription.past_due" in types and "dunning.retry_scheduled" in types


def test_retries_are_scheduled_on_days_1_3_5_7_at_the_same_local_time_when_opened(
    dunned: Dunned,
) -> None:
    dunned.fail_payment()
    attempts = dunned.attempts()
    assert [a.day for a in attempts] == [1, 3, 5, 7]
    assert [a.scheduled_at for a in attempts] == [START + timedelta(days=d) for d in (1, 3, 5, 7)]
    assert {a.test_clock_id for a in attempts} == {dunned.clock_id}


def test_schedule_follows_tenant_settings_when_changed_before_the_failure(dunned: Dunned) -> None:
    put_settings(dunned, retry_days=[2, 4], final_action="cancel")
    dunned.fail_payment()
    assert [a.day for a in dunned.attempts()] == [2, 4]


def test_second_failure_report_changes_no_state_when_no_retry_is_running(dunned: Dunned) -> None:
    dunned.fail_payment()
    history = len(dunned.history())
    dunned.fail_payment(code="insufficient_funds")
    case = dunned.case()
    assert (case.failures, case.last_failure_code) == (2, "insufficient_funds")
    assert len(dunned.history()) == history  # already past_due: no second transition
    assert [a.status for a in dunned.attempts()] == ["scheduled"] * 4
    assert len(dunned.mails()) == 1


# --- retries by the test clock ------------------------------------------------------------


def test_nothing_runs_when_the_clock_has_not_reached_the_first_retry(dunned: Dunned) -> None:
    dunned.fail_payment()
    collector = ScriptedCollector()
    dunned.advance(START + timedelta(hours=23))
    assert dunned.run_retries(collector) == {}
    assert collector.calls == []


@pytest.mark.parametrize(
    ("final_action", "subscription_status", "invoice_status"),
    [("cancel", "canceled", "open"), ("mark_uncollectible", "past_due", "uncollectible")],
)
def test_retries_run_on_days_1_3_5_7_and_final_action_applies_when_all_fail(
    dunned: Dunned, final_action: str, subscription_status: str, invoice_status: str
) -> None:
    put_settings(dunned, final_action=final_action)
    dunned.fail_payment()
    collector = ScriptedCollector()

    for n, day in enumerate((1, 3, 5, 7), start=1):
        dunned.advance(_day(day) - timedelta(minutes=2))
        assert dunned.run_retries(collector) == {}, f"nothing due before day {day}"
        dunned.advance(_day(day))
        assert dunned.run_retries(collector) == {"failed": 1}, f"day {day}"
        assert dunned.run_retries(collector) == {}, "a retry runs once"
        assert len(collector.calls) == n
        assert collector.calls[-1] == (dunned.invoice_id, _day(day))  # the clock's time

    case = dunned.case()
    assert (case.status, case.final_action, case.failures) == ("exhausted", final_action, 5)
    assert [a.status for a in dunned.attempts()] == ["failed"] * 4
    assert dunned.subscription()["status"] == subscription_status
    assert dunned.invoice()["status"] == invoice_status
    kinds = [m.kind for m in dunned.mails()]
    assert kinds == ["dunning.payment_failed"] + ["dunning.retry_failed"] * 3 + [
        "dunning.final_notice"
    ]
    final = dunned.mails()[-1]
    expected = "beendet" if final_action == "cancel" else "überweisen"
    assert "Letzte Mahnung" in final.subject and expected in final.text_body
    reminders = [m.text_body for m in dunned.mails()[1:4]]
    assert "05.03.2026" in reminders[0] and "1. von 4" in reminders[0]
    assert "dunning.exhausted" in dunned.event_types()
    assert dunned.event_types().count("dunning.retry_scheduled") == 4


def test_successful_retry_reactivates_subscription_and_cancels_the_rest_when_paid(
    dunned: Dunned,
) -> None:
    dunned.fail_payment()
    collector = ScriptedCollector(deque(["fail", "succeed"]))
    dunned.advance(_day(1))
    assert dunned.run_retries(collector) == {"failed": 1}
    assert dunned.subscription()["status"] == "past_due"
    dunned.advance(_day(3))
    assert dunned.run_retries(collector) == {"succeeded": 1}

    assert dunned.subscription()["status"] == "active"
    assert dunned.invoice()["status"] == "paid"
    assert dunned.case().status == "recovered"
    assert [a.status for a in dunned.attempts()] == ["failed", "succeeded", "canceled", "canceled"]
    last = dunned.history()[-1]
    assert (last.event, last.old_status, last.new_status) == (
        "payment_succeeded",
        "past_due",
        "active",
    )
    assert last.mrr_before == last.mrr_after
    dunned.advance(_day(8))
    assert dunned.run_retries(collector) == {}
    assert len(collector.calls) == 2
    assert "dunning.recovered" in dunned.event_types()


def test_case_recovers_without_collecting_when_invoice_was_paid_by_hand_meanwhile(
    dunned: Dunned,
) -> None:
    dunned.fail_payment()
    resp = dunned.client.post(
        f"/v1/invoices/{dunned.invoice_id}/mark_paid", json={}, headers=dunned.tenant.headers
    )
    assert resp.status_code == 200, resp.json
    collector = ScriptedCollector()
    dunned.advance(_day(1))
    dunned.run_retries(collector)
    assert collector.calls == []
    assert dunned.case().status == "recovered"
    assert dunned.subscription()["status"] == "active"
    assert [a.status for a in dunned.attempts()] == ["canceled"] * 4


def test_retry_is_deferred_and_run_again_when_payment_provider_is_unavailable(
    dunned: Dunned,
) -> None:
    dunned.fail_payment()
    collector = ScriptedCollector(deque(["unavailable", "succeed"]))
    dunned.advance(_day(1))
    assert dunned.run_retries(collector) == {"scheduled": 1}
    first = dunned.attempts()[0]
    assert (first.status, first.deferrals, first.last_error) == (
        "scheduled",
        1,
        "stripe_unavailable",
    )
    assert first.scheduled_at == _day(1) + timedelta(minutes=15)
    assert dunned.case().failures == 1  # not a failed payment
    dunned.advance(_day(1, minutes=16))
    assert dunned.run_retries(collector) == {"succeeded": 1}
    assert dunned.subscription()["status"] == "active"


def test_retry_runs_once_when_two_workers_race_for_it(dunned: Dunned) -> None:
    with dunned.app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    dunned.fail_payment()
    dunned.advance(_day(1))
    attempt_id = dunned.attempts()[0].id
    gate = threading.Event()
    collector = ScriptedCollector(gate=gate)
    results: list[str | None] = []

    def worker() -> None:
        with dunned.app.app_context(), tenant_session(db.engine, dunned.tenant.tenant_id) as s:
            try:
                status = run_attempt(s, attempt_id, now=datetime.now(UTC), collector=collector)
                s.commit()
            except sa.exc.OperationalError as exc:
                # SQLite: a deferred transaction cannot take the write lock after another
                # writer committed under it (WAL snapshot); it fails instead of running twice
                status = "locked" if "locked" in str(exc) else repr(exc)
            results.append(status)

    first = threading.Thread(target=worker)
    first.start()
    while not collector.calls:  # the first worker holds the claimed row inside its collection
        threading.Event().wait(0.01)
    second = threading.Thread(target=worker)
    second.start()
    threading.Event().wait(0.3)
    gate.set()
    first.join(timeout=30)
    second.join(timeout=30)
    loser = [None] if postgres else [None, "locked"]
    assert len(results) == 2 and "failed" in results
    assert next(r for r in results if r != "failed") in loser
    assert len(collector.calls) == 1
    assert [a.status for a in dunned.attempts()][:2] == ["failed", "scheduled"]


def test_english_customer_gets_english_mails_when_locale_is_not_german(
    client: FlaskClient, app: Flask, tenant: TenantCtx
) -> None:
    d = make_dunned(client, app, tenant, locale="en-GB")
    d.fail_payment()
    [mail] = d.mails()
    assert mail.language == "en" and "Payment failed" in mail.subject
    assert "3 Mar 2026" in mail.text_body


def test_no_mail_is_queued_when_tenant_turned_reminders_off(dunned: Dunned) -> None:
    put_settings(dunned, send_reminders=False)
    dunned.fail_payment()
    assert dunned.mails() == []
    assert dunned.subscription()["status"] == "past_due"


def test_failure_of_a_paid_invoice_opens_no_case_when_reported_late(dunned: Dunned) -> None:
    dunned.client.post(
        f"/v1/invoices/{dunned.invoice_id}/mark_paid", json={}, headers=dunned.tenant.headers
    )
    dunned.fail_payment()
    with dunned.session() as session:
        assert case_for_invoice(session, dunned.invoice_id) is None
    assert dunned.subscription()["status"] == "active"


def test_retry_fails_with_the_error_code_when_collection_is_impossible(dunned: Dunned) -> None:
    def refusing(session: Session, invoice_id: str, *, now: datetime) -> None:
        raise ConflictError("Stripe refused the key", code="payment_provider_misconfigured")

    dunned.fail_payment()
    dunned.advance(_day(1))
    with dunned.app.app_context():
        outcome = run_due_retries(
            db.engine, dunned.tenant.tenant_id, now=datetime.now(UTC), collector=refusing
        )
    assert outcome == {"failed": 1}
    first = dunned.attempts()[0]
    assert (first.status, first.outcome_code) == ("failed", "payment_provider_misconfigured")
    assert dunned.mails()[-1].kind == "dunning.retry_failed"


def test_worker_task_retries_through_the_payments_module_when_it_is_installed(
    dunned: Dunned,
) -> None:
    """The real collector: `billing.payments` `attempt_collection`. This tenant has no Stripe,
    so each retry is reported to dunning as failed (`stripe_not_configured`)."""
    from saas import worker

    collector = default_collector()
    if collector is None:
        pytest.skip("billing.payments provides no attempt_collection yet")
    assert collector.__name__ == "attempt_collection"
    dunned.fail_payment()
    dunned.advance(_day(1))
    with dunned.app.app_context():
        assert worker.dunning_retries.call_local(dunned.tenant.tenant_id) == {"failed": 1}
        assert worker.dunning_retries.call_local(dunned.tenant.tenant_id) == {}
    first = dunned.attempts()[0]
    assert (first.status, first.outcome_code) == ("failed", "stripe_not_configured")
    assert dunned.subscription()["status"] == "past_due"


def test_case_opens_without_a_transition_when_the_subscription_already_ended(
    dunned: Dunned,
) -> None:
    resp = dunned.client.post(
        f"/v1/subscriptions/{dunned.subscription_id}/cancel", json={}, headers=dunned.tenant.headers
    )
    assert resp.status_code == 200, resp.json
    history = len(dunned.history())
    dunned.fail_payment()  # the invoice of its last period is still owed
    assert dunned.subscription()["status"] == "canceled"
    assert len(dunned.history()) == history
    assert dunned.case().status == "open" and len(dunned.mails()) == 1


def test_retry_waits_as_pending_and_the_later_report_settles_it_when_collection_is_async(
    dunned: Dunned,
) -> None:
    dunned.fail_payment()
    dunned.advance(_day(1))
    assert dunned.run_retries(ScriptedCollector(deque(["pending"]))) == {"pending": 1}
    assert dunned.run_retries(ScriptedCollector()) == {}  # not run again
    dunned.fail_payment(code="insufficient_funds")  # the webhook's report
    first = dunned.attempts()[0]
    assert (first.status, first.outcome_code) == ("failed", "insufficient_funds")
    assert dunned.mails()[-1].kind == "dunning.retry_failed"


def test_retry_events_are_dispatched_once_after_the_outer_commit_when_collected_in_a_savepoint(
    dunned: Dunned,
) -> None:
    """The collector runs in a SAVEPOINT; SQLAlchemy fires `after_commit` for its release too.
    Dispatching then would run the webhook and metrics tasks while the retry's transaction
    still holds its events (and SQLite's write lock)."""
    from saas.events import services as events

    dunned.fail_payment()
    dunned.advance(_day(1))
    dispatched: list[tuple[set[str], bool]] = []

    def recorder(tenant_ids: set[str]) -> None:
        with dunned.session() as session:  # a new connection: sees only committed rows
            types = set(session.scalars(sa.select(Event.type)))
        dispatched.append((tenant_ids, "dunning.recovered" in types))

    events.on_events_committed(recorder)
    try:
        assert dunned.run_retries(ScriptedCollector(deque(["succeed"]))) == {"succeeded": 1}
    finally:
        events._COMMIT_HOOKS.remove(recorder)
    assert dispatched == [({dunned.tenant.tenant_id}, True)]
