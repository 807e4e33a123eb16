"""`mail_outbox`: one row per e-mail to send.

Written in the transaction of the state change that causes it (a rolled-back change sends
nothing); the worker sends it after commit. Status: `pending` → `sending` (claimed by one
worker, with a lease) → `sent`; a temporary SMTP failure puts it back to `pending` with
`next_attempt_at` (exponential backoff), a permanent one or too many attempts make it
`failed`. `message_id` is fixed when the row is written, so a resend after a crash between
"accepted by the server" and "marked sent" carries the same Message-ID and receivers can
de-duplicate it.

The address, subject and bodies are personal data (GDPR provider:
`compliance.providers.mail_outbox`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
STATUSES = (PENDING, SENDING, SENT, FAILED)
UNSENT = (PENDING, SENDING, FAILED)


class OutboxMail(TenantOwned, HasLivemode, Base):
    __tablename__ = "mail_outbox"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]
        ),
        sa.UniqueConstraint("tenant_id", "message_id"),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        sa.Index(
            "ix_mail_outbox_tenant_id_status_next_attempt_at",
            "tenant_id",
            "status",
            "next_attempt_at",
        ),
        sa.Index("ix_mail_outbox_tenant_id_customer_id", "tenant_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(64))  # e.g. dunning.payment_failed
    reference_id: Mapped[str | None] = mapped_column(sa.String(40))  # what caused it
    language: Mapped[str] = mapped_column(sa.String(2))
    to_address: Mapped[str] = mapped_column(sa.String(320), info={"personal_data": True})
    subject: Mapped[str] = mapped_column(sa.String(300), info={"personal_data": True})
    text_body: Mapped[str] = mapped_column(sa.Text(), info={"personal_data": True})
    html_body: Mapped[str | None] = mapped_column(sa.Text(), info={"personal_data": True})
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the error class and SMTP code only: server replies can quote the address
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    message_id: Mapped[str] = mapped_column(sa.String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
