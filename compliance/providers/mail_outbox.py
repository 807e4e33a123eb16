"""The e-mail outbox (`saas.mail`) and the dunning cases that fill it (`billing.dunning`).

Export: every mail sent to the person, one JSON file each under `emails/` (address, subject,
text, when it was sent); mails not sent are not something the person received.

Erasure:
- open dunning cases of the person are closed first (their retries canceled), so no further
  reminder is written to an address that is about to be replaced; the invoice itself stays
  as the invoice provider keeps it;
- unsent mails (pending, sending, failed) are deleted;
- sent mails stay as the record that a reminder went out (the demand for payment matters for
  a claim, § 286 BGB) but lose everything personal: the address becomes a random token
  (`erased-…@invalid.example`), the body `[redacted]`, and the person's identifiers are
  scrubbed from the subject.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from billing.dunning.models import OPEN, DunningCase
from billing.dunning.services import close_case
from compliance.registry import (
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportFile,
    ExportPart,
    Provider,
    Registry,
    columns,
)
from compliance.tokens import REDACTED, erased_email, scrub
from saas.mail.models import SENT, UNSENT, OutboxMail

NAME = "mail_outbox"


def _of_subject(customer_id: str, email: str) -> sa.ColumnElement[bool]:
    return sa.or_(OutboxMail.customer_id == customer_id, OutboxMail.to_address == email)


def export(ctx: ExportContext) -> ExportPart:
    rows = ctx.session.scalars(
        sa.select(OutboxMail)
        .where(_of_subject(ctx.subject.customer_id, ctx.subject.email), OutboxMail.status == SENT)
        .order_by(OutboxMail.sent_at, OutboxMail.id)
    ).all()
    files = []
    for row in rows:
        record: dict[str, Any] = {
            "to": row.to_address,
            "subject": row.subject,
            "language": row.language,
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "message_id": row.message_id,
            "text": row.text_body,
            "html": row.html_body,
        }
        content = json.dumps(record, ensure_ascii=False, indent=2).encode()
        files.append(ExportFile(path=f"emails/{row.id}.json", content=content))
    return ExportPart(files=files)


def erase(ctx: ErasureContext) -> ErasureReport:
    report = ErasureReport()
    session = ctx.session
    cases = session.scalars(
        sa.select(DunningCase).where(
            DunningCase.customer_id == ctx.subject.customer_id, DunningCase.status == OPEN
        )
    ).all()
    for case in cases:
        close_case(session, case, at=ctx.now)
    report.count("dunning_case_closed", len(cases))
    condition = _of_subject(ctx.subject.customer_id, ctx.subject.email)
    deleted = session.execute(
        sa.delete(OutboxMail)
        .where(condition, OutboxMail.status.in_(UNSENT))
        .execution_options(synchronize_session=False)
    )
    report.count("unsent_mail_deleted", int(getattr(deleted, "rowcount", 0) or 0))
    sent = session.scalars(sa.select(OutboxMail).where(condition, OutboxMail.status == SENT)).all()
    for mail in sent:
        mail.to_address = erased_email()
        mail.subject = scrub(mail.subject, ctx.subject.identifiers) or REDACTED
        mail.text_body = REDACTED
        mail.html_body = None
        mail.updated_at = ctx.now
    report.count("sent_mail_redacted", len(sent))
    session.flush()
    return report


PROVIDER = Provider(
    name=NAME,
    covers=columns("mail_outbox", ["to_address", "subject", "text_body", "html_body"]),
    purpose="payment reminders by e-mail (performance of the contract, Art. 6(1)(b) GDPR)",
    retention="unsent mails until sent; sent mails kept without personal data after erasure",
    export=export,
    erase=erase,
    order=30,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
