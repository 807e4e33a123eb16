from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime


class Customer(TenantOwned, HasLivemode, Base):
    __tablename__ = "customers"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "livemode", "external_ref"),
        sa.CheckConstraint("length(country) = 2", name="country"),
        sa.CheckConstraint(
            "vat_id_status IS NULL OR vat_id_status IN ('valid', 'invalid', 'unavailable')",
            name="vat_id_status",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "test_clock_id"], ["test_clocks.tenant_id", "test_clocks.id"]
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(sa.String(200), info={"personal_data": True})
    email: Mapped[str] = mapped_column(sa.String(320), info={"personal_data": True})
    name: Mapped[str] = mapped_column(sa.String(200), info={"personal_data": True})
    address_line1: Mapped[str | None] = mapped_column(sa.String(200), info={"personal_data": True})
    address_line2: Mapped[str | None] = mapped_column(sa.String(200), info={"personal_data": True})
    postal_code: Mapped[str | None] = mapped_column(sa.String(20), info={"personal_data": True})
    city: Mapped[str | None] = mapped_column(sa.String(100), info={"personal_data": True})
    state: Mapped[str | None] = mapped_column(sa.String(100), info={"personal_data": True})
    country: Mapped[str] = mapped_column(sa.String(2))
    is_business: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    vat_id: Mapped[str | None] = mapped_column(sa.String(32), info={"personal_data": True})
    # result of the last VIES check of vat_id (valid / invalid / unavailable), None: unchecked;
    # the tax engine treats a business as such only with a valid check (Art. 18 Reg. 282/2011)
    vat_id_status: Mapped[str | None] = mapped_column(sa.String(16))
    vat_id_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locale: Mapped[str] = mapped_column(sa.String(16), default="de-DE")
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", sa.JSON(), default=dict, info={"personal_data": True}
    )
    # test mode: the customer lives on simulated time (set at creation only, as with Stripe)
    test_clock_id: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
