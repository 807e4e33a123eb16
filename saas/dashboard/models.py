"""Staff accounts of a tenant: e-mail, password hash (scrypt), TOTP secret (encrypted).

The TOTP secret is a SecretBox token (`saas.kernel.secretbox`), re-encrypted by
`abowerk secrets reencrypt` (`saas.ops.secrets`). `totp_last_step` refuses a code that was
already used (RFC 6238 §5.2). `failed_logins` and `locked_until` throttle guessing.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, TenantOwned, UTCDateTime

ROLES = ("owner", "admin", "read_only")


class StaffAccount(TenantOwned, Base):
    __tablename__ = "staff_accounts"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "email"),
        sa.CheckConstraint(f"role IN {ROLES!r}", name="role"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), info={"personal_data": True})
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    totp_secret_encrypted: Mapped[str] = mapped_column(sa.Text())
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger())
    role: Mapped[str] = mapped_column(sa.String(16))
    failed_logins: Mapped[int] = mapped_column(sa.Integer(), default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StaffSession(TenantOwned, Base):
    """A signed-in staff member: the cookie holds a random secret, the row its SHA-256, so
    signing out, disabling the account or changing its role takes effect at once."""

    __tablename__ = "staff_sessions"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "secret_hash"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "staff_id"], ["staff_accounts.tenant_id", "staff_accounts.id"]
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    staff_id: Mapped[str] = mapped_column(sa.String(40))
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    # which data the dashboard shows, like Stripe's "test mode" switch
    livemode: Mapped[bool] = mapped_column(sa.Boolean(), default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
