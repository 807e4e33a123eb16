from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, TenantOwned, UTCDateTime


class ApiKey(TenantOwned, Base):
    """A tenant's secret key. Only a SHA-256 of the secret is stored, with its prefix and last
    four characters for display. The secret carries 190 bits of randomness, so a fast hash is
    enough: there is nothing to brute-force that a slow KDF would protect."""

    __tablename__ = "api_keys"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "secret_hash"),
        sa.Index("ix_api_keys_secret_hash", "secret_hash"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    livemode: Mapped[bool] = mapped_column(sa.Boolean())
    prefix: Mapped[str] = mapped_column(sa.String(16))
    last4: Mapped[str] = mapped_column(sa.String(4))
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[list[str]] = mapped_column(sa.JSON())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OAuthClient(TenantOwned, Base):
    """An OAuth 2.0 client of a tenant's back-end (client-credentials grant only)."""

    __tablename__ = "oauth_clients"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "client_id"),
        sa.Index("ix_oauth_clients_client_id", "client_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(sa.String(64))
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(100))
    livemode: Mapped[bool] = mapped_column(sa.Boolean())
    scopes: Mapped[list[str]] = mapped_column(sa.JSON())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
