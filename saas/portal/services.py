"""Portal use cases: issue a one-time link, redeem it for a session, find the session.

Rules:

* A link lives `LINK_TTL` (5 minutes, as Stripe's portal links do) and is redeemed at most
  once; a second use, an expired link or a wrong secret is refused with the same error, so
  the response does not tell an attacker which of them it was.
* The token is `<tenant id>.<link id>.<secret>`: the tenant id lets redemption scope the
  session before it reads anything (row-level security shows nothing without a tenant); the
  secret is 256 random bits, stored only as its SHA-256, compared in constant time.
* A session lives `SESSION_TTL` (one hour) from redemption, is bound to the link's customer,
  tenant and mode, and ends early when the customer signs out.
* `return_url` must be http(s) and is only ever used as a link target, never fetched.
* A card the customer added with Stripe.js (:func:`save_card_from_setup`) becomes the
  customer's default payment method, and every open subscription of the customer then has
  a payment method (an incomplete one is activated, as through the API).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.payments import services as payments
from saas.customers.services import get_customer
from saas.kernel import tenancy
from saas.kernel.errors import UnauthenticatedError, ValidationFailedError
from saas.kernel.ids import new_id
from saas.portal import queries
from saas.portal.models import (
    CANCELLATION_REASONS,
    CancellationReason,
    PortalLink,
    PortalSession,
)
from saas.subscriptions import services as subscriptions

LINK_TTL = timedelta(minutes=5)
SESSION_TTL = timedelta(hours=1)
LOCALES = ("de", "en")


class PortalLinkInvalidError(UnauthenticatedError):
    code = "portal_link_invalid"


class PortalSessionInvalidError(UnauthenticatedError):
    code = "portal_session_invalid"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def language_of(locale: str | None) -> str:
    """`de-DE` → `de`; anything the portal does not speak → `en`."""
    language = (locale or "").split("-")[0].split("_")[0].lower()
    return language if language in LOCALES else "en"


def check_return_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValidationFailedError(
            "return_url must be an absolute http(s) URL",
            errors={"return_url": ["an absolute http(s) URL"]},
        )
    return url


@dataclass(frozen=True)
class IssuedLink:
    link: PortalLink
    token: str


def create_portal_link(
    session: Session,
    *,
    customer_id: str,
    return_url: str | None,
    locale: str | None,
    actor: str,
    now: datetime,
) -> IssuedLink:
    customer = get_customer(session, customer_id)  # 404 for another tenant's or mode's
    secret = secrets.token_urlsafe(32)
    link = PortalLink(
        id=new_id("pln"),
        livemode=customer.livemode,
        customer_id=customer.id,
        token_hash=_digest(secret),
        return_url=check_return_url(return_url),
        locale=language_of(locale or customer.locale),
        created_by=actor,
        created_at=now,
        expires_at=now + LINK_TTL,
    )
    session.add(link)
    session.flush()
    return IssuedLink(link, f"{link.tenant_id}.{link.id}.{secret}")


def _split(token: str, error: type[UnauthenticatedError]) -> tuple[str, str, str]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts) or len(token) > 300:
        raise error("the link or session is not valid")
    return parts[0], parts[1], parts[2]


@dataclass(frozen=True)
class OpenedSession:
    session: PortalSession
    cookie: str


def redeem_portal_link(session: Session, token: str, *, now: datetime) -> OpenedSession:
    """Spend the link and open a session. The caller's session is scoped to the link's
    tenant and mode afterwards."""
    tenant_id, link_id, secret = _split(token, PortalLinkInvalidError)
    tenancy.set_tenant(session, tenant_id)
    link = session.scalars(
        sa.select(PortalLink).where(PortalLink.id == link_id).with_for_update()
    ).first()
    refused = PortalLinkInvalidError(
        "this portal link is not valid any more: links work once and for a few minutes; "
        "ask for a new one"
    )
    if link is None or not hmac.compare_digest(link.token_hash, _digest(secret)):
        raise refused
    if link.used_at is not None or link.expires_at <= now:
        raise refused
    # a concurrent redemption of the same link updates no row here and is refused
    spent = session.execute(
        sa.update(PortalLink)
        .where(PortalLink.id == link.id, PortalLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise refused
    tenancy.set_tenant(session, tenant_id, livemode=link.livemode)
    session_secret = secrets.token_urlsafe(32)
    opened = PortalSession(
        id=new_id("psn"),
        livemode=link.livemode,
        link_id=link.id,
        customer_id=link.customer_id,
        secret_hash=_digest(session_secret),
        locale=link.locale or "de",
        return_url=link.return_url,
        created_at=now,
        expires_at=now + SESSION_TTL,
    )
    session.add(opened)
    session.flush()
    return OpenedSession(opened, f"{tenant_id}.{opened.id}.{session_secret}")


def load_portal_session(session: Session, cookie: str, *, now: datetime) -> PortalSession:
    """The live session the cookie names; scopes `session` to its tenant and mode."""
    tenant_id, session_id, secret = _split(cookie, PortalSessionInvalidError)
    tenancy.set_tenant(session, tenant_id)
    found = session.scalars(sa.select(PortalSession).where(PortalSession.id == session_id)).first()
    if (
        found is None
        or not hmac.compare_digest(found.secret_hash, _digest(secret))
        or found.ended_at is not None
        or found.expires_at <= now
    ):
        tenancy.set_tenant(session, None)
        raise PortalSessionInvalidError("the portal session has ended; open the portal again")
    tenancy.set_tenant(session, tenant_id, livemode=found.livemode)
    return found


def end_portal_session(portal: PortalSession, *, now: datetime) -> None:
    portal.ended_at = now


def record_cancellation_reason(
    session: Session, portal: PortalSession, subscription_id: str, reason: str, *, now: datetime
) -> CancellationReason:
    if reason not in CANCELLATION_REASONS:
        raise ValidationFailedError("unknown reason", errors={"reason": ["choose a reason"]})
    row = CancellationReason(
        id=new_id("cnr"),
        livemode=portal.livemode,
        subscription_id=subscription_id,
        customer_id=portal.customer_id,
        reason=reason,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def save_card_from_setup(
    session: Session, portal: PortalSession, setup_intent_id: str, *, now: datetime
) -> payments.CardSetupOutcome:
    """The customer is back from Stripe.js: keep the card when Stripe says the SetupIntent
    of this customer succeeded, and tell the customer's subscriptions they have one."""
    outcome = payments.complete_card_setup(session, portal.customer_id, setup_intent_id, now=now)
    if outcome.status == "succeeded" and outcome.record.default_payment_method_id:
        for sub in queries.subscriptions(session, portal.customer_id):
            if not sub.has_payment_method:
                subscriptions.set_payment_method(
                    session,
                    sub.id,
                    {"has_payment_method": True},
                    actor=f"portal:{portal.id}",
                    now=now,
                )
    return outcome
