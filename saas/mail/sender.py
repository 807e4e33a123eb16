"""Sending the outbox over SMTP (`smtplib`), one tenant at a time.

Each mail is claimed before it is sent, in a short transaction of its own: a conditional
UPDATE `pending` → `sending` with a lease (`locked_until`), so two workers never send the
same row. After the server accepted it, the row becomes `sent` in a second transaction. A
worker that dies between the two leaves a `sending` row whose lease runs out; the next run
sends it again with the same Message-ID (the outbox guarantee is at-least-once across
crashes, exactly once otherwise; receivers can de-duplicate on the Message-ID).

Failures: a refused connection, a timeout, a dropped connection or a 4xx reply is temporary:
the mail goes back to `pending` with `next_attempt_at` = now + 1, 2, 4, … minutes (at most 6
hours) and the run stops, since the server is unlikely to accept the next one a moment later.
A 5xx reply to the sender, recipient or data is permanent, and so is the 12th temporary
failure: status `failed`. `last_error` keeps the error class and SMTP code only, because
server replies quote addresses.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import sqlalchemy as sa

from saas.kernel.tasks import tenant_session
from saas.mail.models import FAILED, PENDING, SENDING, SENT, OutboxMail
from saas.tenants.models import Tenant

log = logging.getLogger("abowerk.mail")

MAX_ATTEMPTS = 12
LEASE = timedelta(minutes=5)
BATCH = 50
MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    mail_from: str = "abowerk@localhost"
    timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @classmethod
    def from_settings(cls, settings: Any) -> SmtpSettings:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            mail_from=settings.mail_from,
        )


@dataclass
class DeliveryReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0


def backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failure: 1, 2, 4, … minutes, at most 6 hours."""
    return min(timedelta(minutes=1) * (1 << min(max(attempts - 1, 0), 16)), MAX_BACKOFF)


class _Temporary(Exception):  # noqa: N818  (internal signal, not an error type)
    def __init__(self, reason: str, *, connection_lost: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.connection_lost = connection_lost


class _Permanent(Exception):  # noqa: N818
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({c for c, _ in exc.recipients.values()})
        code = codes[0] if codes else None
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


def _classify(exc: BaseException) -> _Temporary | _Permanent:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        if codes and all(c >= 500 for c in codes):
            return _Permanent(_reason(exc))
        return _Temporary(_reason(exc), connection_lost=False)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # our configuration, not the mail: keep it and stop until someone fixes the login
        return _Temporary(_reason(exc), connection_lost=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        if exc.smtp_code >= 500:
            return _Permanent(_reason(exc))
        return _Temporary(_reason(exc), connection_lost=False)
    # SMTPServerDisconnected, refused connections, timeouts, TLS failures
    return _Temporary(_reason(exc), connection_lost=True)


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    if smtp.host is None:
        raise RuntimeError("SMTP is not configured")  # deliver_pending checks first
    conn = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    try:
        conn.ehlo()
        if smtp.starttls:
            conn.starttls(context=ssl.create_default_context())
            conn.ehlo()
        if smtp.username:
            conn.login(smtp.username, smtp.password or "")
    except BaseException:
        conn.close()
        raise
    return conn


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(
            OutboxMail.status == PENDING,
            sa.or_(OutboxMail.next_attempt_at.is_(None), OutboxMail.next_attempt_at <= now),
        ),
        # a worker died while sending: its lease ran out
        sa.and_(OutboxMail.status == SENDING, OutboxMail.locked_until < now),
    )


def due_mail_ids(engine: sa.Engine, tenant_id: str, *, now: datetime, limit: int) -> list[str]:
    with tenant_session(engine, tenant_id) as session:
        return list(
            session.scalars(
                sa.select(OutboxMail.id)
                .where(_due(now))
                .order_by(OutboxMail.created_at, OutboxMail.id)
                .limit(limit)
            )
        )


def _claim(
    engine: sa.Engine, tenant_id: str, mail_id: str, now: datetime, mail_from: str
) -> EmailMessage | None:
    """Take the mail for this worker (committed at once), or None if another one has it."""
    with tenant_session(engine, tenant_id) as session:
        result = session.execute(
            sa.update(OutboxMail)
            .where(OutboxMail.id == mail_id, _due(now))
            .values(
                status=SENDING,
                locked_until=now + LEASE,
                attempts=OutboxMail.attempts + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            session.rollback()
            return None
        mail = session.scalars(sa.select(OutboxMail).where(OutboxMail.id == mail_id)).one()
        tenant = session.get(Tenant, tenant_id)
        message = _message(mail, tenant.legal_name if tenant is not None else None, mail_from, now)
        session.commit()
        return message


def _message(
    mail: OutboxMail, sender_name: str | None, mail_from: str, now: datetime
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((sender_name or "", mail_from))
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(now)
    message["X-Abowerk-Mail-Id"] = mail.id
    message.set_content(mail.text_body)
    if mail.html_body:
        message.add_alternative(mail.html_body, subtype="html")
    message["Content-Language"] = mail.language  # after set_content, which drops Content-*
    return message


def _finish(
    engine: sa.Engine,
    tenant_id: str,
    mail_id: str,
    *,
    now: datetime,
    error: str | None,
    status: str,
) -> None:
    with tenant_session(engine, tenant_id) as session:
        mail = session.scalars(sa.select(OutboxMail).where(OutboxMail.id == mail_id)).one()
        mail.status = status
        mail.locked_until = None
        mail.updated_at = now
        if status == SENT:
            mail.sent_at = now
            mail.last_error = None
            mail.next_attempt_at = None
        elif status == PENDING:
            mail.last_error = error
            mail.next_attempt_at = now + backoff(mail.attempts)
        else:
            mail.last_error = error
            mail.next_attempt_at = None
        session.commit()


def deliver_pending(
    engine: sa.Engine,
    tenant_id: str,
    smtp: SmtpSettings,
    *,
    now: datetime,
    limit: int = BATCH,
) -> DeliveryReport:
    """Send the tenant's due mails over one SMTP connection; see the module docstring."""
    report = DeliveryReport()
    if not smtp.enabled:
        return report
    conn: smtplib.SMTP | None = None
    try:
        for mail_id in due_mail_ids(engine, tenant_id, now=now, limit=limit):
            message = _claim(engine, tenant_id, mail_id, now, smtp.mail_from)
            if message is None:
                continue  # another worker took it
            try:
                if conn is None:
                    conn = _connect(smtp)
                conn.send_message(message, from_addr=smtp.mail_from)
            except (OSError, smtplib.SMTPException) as exc:
                outcome = _classify(exc)
                attempts = _attempts(engine, tenant_id, mail_id)
                if isinstance(outcome, _Permanent) or attempts >= MAX_ATTEMPTS:
                    _finish(
                        engine, tenant_id, mail_id, now=now, error=outcome.reason, status=FAILED
                    )
                    report.failed += 1
                    log.warning("mail failed", extra={"mail_id": mail_id, "error": outcome.reason})
                else:
                    _finish(
                        engine, tenant_id, mail_id, now=now, error=outcome.reason, status=PENDING
                    )
                    report.deferred += 1
                    log.info("mail deferred", extra={"mail_id": mail_id, "error": outcome.reason})
                if isinstance(outcome, _Temporary) and outcome.connection_lost:
                    if conn is not None:
                        conn.close()
                    conn = None
                    break  # the server is away: the rest waits for the next run
                continue
            _finish(engine, tenant_id, mail_id, now=now, error=None, status=SENT)
            report.sent += 1
    finally:
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()
    return report


def _attempts(engine: sa.Engine, tenant_id: str, mail_id: str) -> int:
    with tenant_session(engine, tenant_id) as session:
        return int(
            session.scalars(sa.select(OutboxMail.attempts).where(OutboxMail.id == mail_id)).one()
        )
