from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, TenantOwned, UTCDateTime


class IdempotencyKey(TenantOwned, Base):
    """One `Idempotency-Key` of a tenant in one mode, with the stored response once done.

    `locked_until` is a lease: a request that died without finishing leaves a row that a retry
    may take over after the lease, instead of a key stuck at 409 forever.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "livemode", "key"),
        sa.Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    livemode: Mapped[bool] = mapped_column(sa.Boolean())
    key: Mapped[str] = mapped_column(sa.String(255))
    request_method: Mapped[str] = mapped_column(sa.String(8))
    request_path: Mapped[str] = mapped_column(sa.String(500))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    response_status: Mapped[int | None] = mapped_column(sa.Integer())
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())
    response_body: Mapped[str | None] = mapped_column(sa.Text(), info={"personal_data": True})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
