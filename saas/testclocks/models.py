from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

# `advancing` is for when advancing moves to the worker; today it runs within the request
TEST_CLOCK_STATUSES = ("ready", "advancing")


class TestClock(TenantOwned, HasLivemode, Base):
    """Simulated time for test-mode customers; `frozen_time` only ever moves forward."""

    __test__ = False  # not a pytest test class, despite the name
    __tablename__ = "test_clocks"
    __table_args__ = (sa.CheckConstraint(f"status IN {TEST_CLOCK_STATUSES!r}", name="status"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    frozen_time: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(sa.String(16), default="ready")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
