from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime


class Event(TenantOwned, HasLivemode, Base):
    """An outbox row. `dispatched_at` is set once webhook deliveries were created for it."""

    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_tenant_id_dispatched_at", "tenant_id", "dispatched_at"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(80))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON(), info={"personal_data": True})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
