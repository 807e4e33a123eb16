"""Putting an e-mail into the outbox. Domain code calls `enqueue_mail` inside its own
transaction and flushes nothing else: the row commits or rolls back with the change that
caused it, and the worker sends it afterwards (`saas.mail.sender`)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.kernel.ids import new_id
from saas.mail.models import PENDING, OutboxMail

MESSAGE_ID_DOMAIN = "abowerk.mail"
TEST_PREFIX = "[TEST] "


def message_id_for(mail_id: str) -> str:
    """A globally unique Message-ID fixed at enqueue time (RFC 5322 § 3.6.4)."""
    return f"<{mail_id}@{MESSAGE_ID_DOMAIN}>"


def enqueue_mail(
    session: Session,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    language: str,
    kind: str,
    livemode: bool,
    now: datetime,
    customer_id: str | None = None,
    reference_id: str | None = None,
) -> OutboxMail:
    """Queue one e-mail. Test-mode mails are sent too (test clocks and test customers use
    them), marked `[TEST]` in the subject so that nobody takes them for a real demand."""
    mail_id = new_id("mail")
    mail = OutboxMail(
        id=mail_id,
        livemode=livemode,
        customer_id=customer_id,
        kind=kind,
        reference_id=reference_id,
        language=language,
        to_address=to,
        subject=subject if livemode else TEST_PREFIX + subject,
        text_body=text,
        html_body=html,
        status=PENDING,
        attempts=0,
        next_attempt_at=None,  # as soon as the worker comes by
        message_id=message_id_for(mail_id),
        created_at=now,
        updated_at=now,
    )
    session.add(mail)
    return mail


def mails_for(session: Session, *, reference_id: str) -> list[OutboxMail]:
    return list(
        session.scalars(
            sa.select(OutboxMail)
            .where(OutboxMail.reference_id == reference_id)
            .order_by(OutboxMail.created_at, OutboxMail.id)
        )
    )
