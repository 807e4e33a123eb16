"""`consents`: one row per consent given, kept as proof (Art. 7(1) GDPR: the controller must
be able to demonstrate consent).

A consent is given for one `purpose` (the tenant's own words: `newsletter`,
`product_updates`, …), in a `text_version` of the wording shown, through a `source` (`api`,
`portal`, `signup_form`, …). Withdrawing it (Art. 7(3)) sets `withdrawn_at`; the row stays as
the record of the period in which processing was lawful. Giving consent again for the same
purpose adds a new row. At most one row per customer and purpose is active (not withdrawn), a
partial unique index enforces it. `ip_address` (optional) is the proof of who clicked.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime


class Consent(TenantOwned, HasLivemode, Base):
    __tablename__ = "consents"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]
        ),
        sa.Index("ix_consents_tenant_id_customer_id", "tenant_id", "customer_id"),
        sa.Index(
            "uq_consents_active_purpose",
            "tenant_id",
            "customer_id",
            "purpose",
            unique=True,
            postgresql_where=sa.text("withdrawn_at IS NULL"),
            sqlite_where=sa.text("withdrawn_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    purpose: Mapped[str] = mapped_column(sa.String(64))
    text_version: Mapped[str | None] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(32))
    ip_address: Mapped[str | None] = mapped_column(sa.String(45), info={"personal_data": True})
    given_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawal_source: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
