"""Consent use cases: record a consent, withdraw it, list a customer's consents.

- Giving consent for a purpose that already has an active consent with the same wording
  changes nothing (the existing record is the proof); with another `text_version` the old
  record is closed (`withdrawal_source = "renewed"`) and a new one opened.
- Withdrawing closes the active record; with none active it is refused (409
  `consent_not_given`), since there is nothing to withdraw.
- Records are never deleted here: they prove what was lawful when (Art. 7(1) GDPR). Only the
  erasure of the person deletes them (`compliance.providers.consents`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.consents.errors import ConsentNotGivenError
from saas.consents.models import Consent
from saas.customers.services import get_customer
from saas.kernel.ids import new_id

RENEWED = "renewed"


def _active(session: Session, customer_id: str, purpose: str) -> Consent | None:
    return session.scalars(
        sa.select(Consent).where(
            Consent.customer_id == customer_id,
            Consent.purpose == purpose,
            Consent.withdrawn_at.is_(None),
        )
    ).first()


def record_consent(
    session: Session, customer_id: str, data: dict[str, Any], *, now: datetime
) -> Consent:
    customer = get_customer(session, customer_id)
    purpose = data["purpose"]
    source = data.get("source") or "api"
    active = _active(session, customer.id, purpose)
    if not data["granted"]:
        if active is None:
            raise ConsentNotGivenError(
                f"customer {customer.id} has no active consent for {purpose!r}",
                errors={"purpose": ["no active consent to withdraw"]},
            )
        active.withdrawn_at = now
        active.withdrawal_source = source
        active.updated_at = now
        session.flush()
        return active
    if active is not None:
        if active.text_version == data.get("text_version"):
            return active
        active.withdrawn_at = now
        active.withdrawal_source = RENEWED
        active.updated_at = now
        session.flush()  # the partial unique index allows one active row per purpose
    consent = Consent(
        id=new_id("cons"),
        livemode=customer.livemode,
        customer_id=customer.id,
        purpose=purpose,
        text_version=data.get("text_version"),
        source=source,
        ip_address=data.get("ip_address"),
        given_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(consent)
    session.flush()
    return consent


def list_consents(session: Session, customer_id: str) -> Sequence[Consent]:
    customer = get_customer(session, customer_id)
    return session.scalars(
        sa.select(Consent)
        .where(Consent.customer_id == customer.id)
        .order_by(Consent.given_at.desc(), Consent.id.desc())
    ).all()
