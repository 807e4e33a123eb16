"""The e-mail outbox against a real SMTP server (aiosmtpd on 127.0.0.1): sent after commit,
retried with backoff while the server is away, delivered exactly once when it is back,
failed for good on a permanent refusal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.extensions import db
from saas.kernel.tasks import tenant_session
from saas.mail.models import OutboxMail
from saas.mail.sender import SmtpSettings, deliver_pending
from saas.mail.services import enqueue_mail
from tests.conftest import CUSTOMER, TenantCtx
from tests.support.smtp import SmtpServer

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def settings_for(server: SmtpServer) -> SmtpSettings:
    return SmtpSettings(
        host=server.host,
        port=server.port,
        starttls=False,
        mail_from="rechnung@muster.example",
        timeout=5,
    )


def queue(app: Flask, tenant: TenantCtx, *, rollback: bool = False, **fields: Any) -> str:
    with app.app_context(), tenant_session(db.engine, tenant.tenant_id) as session:
        mail = enqueue_mail(
            session,
            to=fields.pop("to", "erika@example.de"),
            subject=fields.pop("subject", "Zahlung fehlgeschlagen"),
            text=fields.pop("text", "Guten Tag Erika,\n\nbitte prüfen Sie Ihre Karte.\n"),
            html=fields.pop("html", None),
            language="de",
            kind="dunning.payment_failed",
            livemode=fields.pop("livemode", True),
            now=NOW,
        )
        mail_id = mail.id
        if rollback:
            session.rollback()
        else:
            session.commit()
    return mail_id


def load(app: Flask, tenant: TenantCtx, mail_id: str) -> OutboxMail:
    with app.app_context(), tenant_session(db.engine, tenant.tenant_id) as session:
        return session.scalars(sa.select(OutboxMail).where(OutboxMail.id == mail_id)).one()


def deliver(app: Flask, tenant: TenantCtx, server: SmtpServer, at: datetime) -> Any:
    with app.app_context():
        return deliver_pending(db.engine, tenant.tenant_id, settings_for(server), now=at)


def test_queued_mail_is_sent_with_its_headers_when_smtp_is_up(
    app: Flask, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    mail_id = queue(app, tenant, html="<p>Guten Tag</p>")
    report = deliver(app, tenant, smtp, NOW)
    assert (report.sent, report.deferred, report.failed) == (1, 0, 0)
    [received] = smtp.received
    assert received.mail_from == "rechnung@muster.example"
    assert received.rcpt_tos == ["erika@example.de"]
    message = received.message
    assert message["From"] == "Muster GmbH <rechnung@muster.example>"  # the tenant's name
    assert message["Subject"] == "Zahlung fehlgeschlagen"
    assert message["Content-Language"] == "de"
    stored = load(app, tenant, mail_id)
    assert message["Message-ID"] == stored.message_id
    assert "bitte prüfen Sie Ihre Karte" in message.get_body(("plain",)).get_content()
    assert "<p>Guten Tag</p>" in message.get_body(("html",)).get_content()
    assert (stored.status, stored.attempts, stored.sent_at) == ("sent", 1, NOW)


def test_mail_is_delivered_exactly_once_when_smtp_was_down_and_comes_back(
    app: Flask, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    mail_id = queue(app, tenant)
    smtp.stop()
    report = deliver(app, tenant, smtp, NOW)
    assert (report.sent, report.deferred) == (0, 1)
    stored = load(app, tenant, mail_id)
    assert (stored.status, stored.attempts) == ("pending", 1)
    assert stored.next_attempt_at == NOW + timedelta(minutes=1)
    assert stored.last_error == "ConnectionRefusedError"

    smtp.start()
    assert deliver(app, tenant, smtp, NOW + timedelta(seconds=30)).sent == 0  # backing off
    assert smtp.received == []
    assert deliver(app, tenant, smtp, NOW + timedelta(minutes=1)).sent == 1
    assert deliver(app, tenant, smtp, NOW + timedelta(minutes=5)).sent == 0
    assert len(smtp.received) == 1
    stored = load(app, tenant, mail_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 2, None)


def test_backoff_grows_when_smtp_stays_down(
    app: Flask, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    mail_id = queue(app, tenant)
    smtp.stop()
    at = NOW
    waits = []
    for _ in range(4):
        deliver(app, tenant, smtp, at)
        stored = load(app, tenant, mail_id)
        assert stored.next_attempt_at is not None
        waits.append(stored.next_attempt_at - at)
        at = stored.next_attempt_at
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]


def test_mail_fails_for_good_when_the_server_refuses_the_recipient(
    app: Flask, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    mail_id = queue(app, tenant)
    smtp.reject_next("550 5.1.1 no such user")
    report = deliver(app, tenant, smtp, NOW)
    assert report.failed == 1
    stored = load(app, tenant, mail_id)
    assert (stored.status, stored.last_error) == ("failed", "SMTPRecipientsRefused 550")
    assert "erika" not in (stored.last_error or "")  # replies quote addresses: never kept
    assert deliver(app, tenant, smtp, NOW + timedelta(hours=1)).sent == 0
    assert smtp.received == []


def test_mail_is_retried_when_the_server_defers_the_recipient(
    app: Flask, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    mail_id = queue(app, tenant)
    smtp.reject_next("452 4.2.2 mailbox full")
    assert deliver(app, tenant, smtp, NOW).deferred == 1
    assert load(app, tenant, mail_id).status == "pending"
    assert deliver(app, tenant, smtp, NOW + timedelta(minutes=1)).sent == 1
    assert len(smtp.received) == 1


def test_mail_is_sent_once_when_two_workers_deliver_at_the_same_time(
    app: Flask, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    for n in range(5):
        queue(app, tenant, to=f"kunde{n}@example.de")
    barrier = threading.Barrier(2)
    reports = []

    def worker() -> None:
        barrier.wait()
        reports.append(deliver(app, tenant, smtp, NOW))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.sent for r in reports) == 5
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == [
        f"kunde{n}@example.de" for n in range(5)
    ]


def test_abandoned_sending_mail_is_sent_again_when_its_lease_ran_out(
    app: Flask, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    mail_id = queue(app, tenant)
    with app.app_context(), tenant_session(db.engine, tenant.tenant_id) as session:
        # a worker claimed it and died before it could mark it sent
        mail = session.scalars(sa.select(OutboxMail).where(OutboxMail.id == mail_id)).one()
        mail.status = "sending"
        mail.attempts = 1
        mail.locked_until = NOW + timedelta(minutes=5)
        session.commit()
    assert deliver(app, tenant, smtp, NOW + timedelta(minutes=4)).sent == 0
    assert deliver(app, tenant, smtp, NOW + timedelta(minutes=6)).sent == 1
    assert load(app, tenant, mail_id).status == "sent"


def test_nothing_is_sent_when_the_change_that_queued_it_rolls_back(
    app: Flask, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    queue(app, tenant, rollback=True)
    assert deliver(app, tenant, smtp, NOW).sent == 0
    assert smtp.received == []


def test_mails_stay_queued_when_no_smtp_server_is_configured(app: Flask, tenant: TenantCtx) -> None:
    mail_id = queue(app, tenant)
    with app.app_context():
        report = deliver_pending(db.engine, tenant.tenant_id, SmtpSettings(host=None), now=NOW)
    assert report.sent == report.deferred == 0
    assert (load(app, tenant, mail_id).status, load(app, tenant, mail_id).attempts) == (
        "pending",
        0,
    )


def test_test_mode_mail_is_marked_when_queued(app: Flask, tenant: TenantCtx) -> None:
    mail_id = queue(app, tenant, livemode=False)
    assert load(app, tenant, mail_id).subject == "[TEST] Zahlung fehlgeschlagen"


def test_other_tenants_mails_are_left_alone_when_delivering(
    app: Flask, tenant: TenantCtx, other_tenant: TenantCtx, smtp: SmtpServer
) -> None:
    theirs = queue(app, other_tenant)
    assert deliver(app, tenant, smtp, NOW).sent == 0
    assert load(app, other_tenant, theirs).status == "pending"


def test_dunning_mails_go_out_through_smtp_when_a_payment_failed(
    client: FlaskClient, app: Flask, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    from tests.integration.test_dunning import make_dunned

    dunned = make_dunned(client, app, tenant)
    dunned.fail_payment()
    assert deliver(app, tenant, smtp, NOW).sent == 1
    [received] = smtp.received
    assert received.rcpt_tos == ["einkauf@nordlicht.example"]
    assert received.message["Subject"].startswith("[TEST] Zahlung fehlgeschlagen: Rechnung")
    assert CUSTOMER["email"] not in received.rcpt_tos


def test_worker_task_sends_through_the_configured_server_when_smtp_settings_are_set(
    app: Flask, database_url: str, tmp_path: Any, tenant: TenantCtx, smtp: SmtpServer
) -> None:
    """`deliver_mail` reads ABOWERK_SMTP_HOST/PORT/STARTTLS and ABOWERK_MAIL_FROM."""
    from saas import worker
    from saas.app import create_app
    from tests.conftest import make_environ

    mail_id = queue(app, tenant)
    environ = make_environ(
        database_url,
        tmp_path,
        ABOWERK_SMTP_HOST=smtp.host,
        ABOWERK_SMTP_PORT=str(smtp.port),
        ABOWERK_SMTP_STARTTLS="false",
        ABOWERK_MAIL_FROM="billing@muster.example",
    )
    mailer = create_app({"ENVIRON": environ, "TESTING": True})
    try:
        with mailer.app_context():
            assert worker.deliver_mail.call_local(tenant.tenant_id) == 1
            assert worker.deliver_mail.call_local(tenant.tenant_id) == 0
    finally:
        with mailer.app_context():
            db.engine.dispose()
        worker.bind_app(app)
    [received] = smtp.received
    assert received.mail_from == "billing@muster.example"
    assert load(app, tenant, mail_id).status == "sent"
    # the suite's app has no SMTP server: its task leaves mails queued
    queue(app, tenant)
    with app.app_context():
        assert worker.deliver_mail.call_local(tenant.tenant_id) == 0
