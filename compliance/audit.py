"""A minimal audit log: who did what to whom, kept apart from the data it talks about.

`audit_entries` is tenant-owned. An entry names the actor (a credential id, `system`,
`operator`), the action (`gdpr.request.created`, …), the subject by type and surrogate id, and
`subject_hmac`: HMAC-SHA256 of the subject's normalised e-mail address under a key derived
from the secret key. The HMAC lets a later request from the same address find the entries
("what did you do with my data?") without the log ever holding the address. `details` holds
ids, codes and counts only; `record` refuses anything that looks like an e-mail address.

Erasure redacts entries (Art. 17 does not reach records the controller needs to demonstrate
compliance, Art. 5(2), 17(3)(b)): `details` is cut down to the keys in `KEPT_DETAIL_KEYS` and
`redacted_at` set; the HMAC and the surrogate id stay. Entries are never deleted.

Other modules may adopt this log: call `record` with the session of the change.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.orm import Mapped, Session, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime
from saas.kernel.ids import new_id

KEPT_DETAIL_KEYS = frozenset(
    {"request_id", "kind", "state", "method", "months", "restriction_id", "export_id"}
    | {"document_type", "document_id", "document_class", "reason_code", "result"}
)
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_MAX_DETAIL_STRING = 200


class AuditEntry(TenantOwned, HasLivemode, Base):
    __tablename__ = "audit_entries"
    __table_args__ = (
        sa.Index("ix_audit_entries_tenant_id_subject_id", "tenant_id", "subject_id"),
        sa.Index("ix_audit_entries_tenant_id_subject_hmac", "tenant_id", "subject_hmac"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(80))
    subject_type: Mapped[str] = mapped_column(sa.String(40))
    subject_id: Mapped[str | None] = mapped_column(sa.String(40))
    # pseudonymous, but still personal data (Recital 26 GDPR): covered by the audit provider
    subject_hmac: Mapped[str | None] = mapped_column(sa.String(64), info={"personal_data": True})
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON(), default=dict)
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def derive_hmac_key(secret_key: str) -> bytes:
    """The audit log's HMAC key, derived from the application's secret key (HKDF)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"abowerk audit subject hmac v1"
    ).derive(secret_key.encode())


def normalise_email(email: str) -> str:
    return email.strip().casefold()


def subject_hmac(key: bytes, email: str) -> str:
    return hmac.new(key, normalise_email(email).encode(), hashlib.sha256).hexdigest()


def subject_hmacs(keys: Iterable[bytes], email: str) -> list[str]:
    """The HMACs under the current and previous keys (after a secret key rotation)."""
    return [subject_hmac(key, email) for key in keys]


def _check_details(details: dict[str, Any]) -> None:
    def check(value: Any) -> None:
        if isinstance(value, list | tuple):
            for item in value:
                check(item)
        elif isinstance(value, dict):
            _check_details(value)
        elif isinstance(value, str):
            if len(value) > _MAX_DETAIL_STRING or _EMAIL_LIKE.search(value):
                raise ValueError("audit details hold ids, codes and counts, never personal data")
        elif value is not None and not isinstance(value, bool | int | float):
            raise ValueError(f"audit details must be JSON scalars, not {type(value).__name__}")

    for key, value in details.items():
        if not isinstance(key, str):
            raise ValueError("audit detail keys are strings")
        check(value)


def record(
    session: Session,
    *,
    action: str,
    actor: str,
    subject_type: str,
    subject_id: str | None,
    livemode: bool,
    now: datetime,
    hmac_key: bytes | None = None,
    subject_email: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the session (it commits with the change it describes)."""
    details = dict(details or {})
    _check_details(details)
    entry = AuditEntry(
        id=new_id("aud"),
        livemode=livemode,
        at=now,
        actor=actor[:64],
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        subject_hmac=(
            subject_hmac(hmac_key, subject_email) if hmac_key and subject_email else None
        ),
        details=details,
    )
    session.add(entry)
    return entry


def entries_about(
    session: Session, *, subject_id: str, hmacs: Iterable[str] = ()
) -> list[AuditEntry]:
    condition = AuditEntry.subject_id == subject_id
    hmac_list = [h for h in hmacs if h]
    if hmac_list:
        condition = sa.or_(condition, AuditEntry.subject_hmac.in_(hmac_list))
    return list(session.scalars(sa.select(AuditEntry).where(condition).order_by(AuditEntry.id)))


def redact(entry: AuditEntry, *, now: datetime) -> bool:
    """Cut `details` down to the kept keys; True if the entry changed."""
    kept = {k: v for k, v in entry.details.items() if k in KEPT_DETAIL_KEYS}
    if entry.redacted_at is not None and kept == entry.details:
        return False
    entry.details = kept
    entry.redacted_at = entry.redacted_at or now
    return True
