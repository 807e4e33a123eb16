"""Tenant use cases (platform operator level)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.kernel.countries import is_country
from saas.kernel.errors import ConflictError, ValidationFailedError
from saas.kernel.ids import new_id
from saas.tenants.models import Tenant

CURRENCIES = frozenset("EUR USD GBP CHF SEK DKK NOK PLN CZK HUF RON BGN ISK CAD AUD JPY".split())


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:50] or "tenant"


def create_tenant(
    session: Session,
    *,
    name: str,
    now: datetime,
    country: str = "DE",
    slug: str | None = None,
    timezone: str = "Europe/Berlin",
    currency: str = "EUR",
) -> Tenant:
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors["name"] = ["must not be empty"]
    if not is_country(country):
        errors["country"] = ["not an ISO 3166-1 alpha-2 country code"]
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = ["not an IANA time zone"]
    if currency not in CURRENCIES:
        errors["currency"] = [f"one of {', '.join(sorted(CURRENCIES))}"]
    if errors:
        raise ValidationFailedError("invalid tenant", errors=errors)
    if slug is not None:
        if session.scalars(sa.select(Tenant.id).where(Tenant.slug == slug)).first():
            raise ConflictError(f"slug {slug!r} is taken", code="slug_taken")
    else:
        slug = _slugify(name)
        if session.scalars(sa.select(Tenant.id).where(Tenant.slug == slug)).first():
            slug = f"{slug}-{secrets.token_hex(3)}"
    tenant = Tenant(
        id=new_id("ten"),
        slug=slug,
        legal_name=name.strip(),
        country=country,
        timezone=timezone,
        default_currency=currency,
        status="active",
        created_at=now,
    )
    session.add(tenant)
    session.flush()
    return tenant
