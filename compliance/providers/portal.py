"""Customer portal (`saas.portal`): links and sessions hold no personal data (ids and hashes),
but an erased customer must not stay signed in: erasure ends the customer's portal sessions
and spends their unused links. The cancellation reasons (a fixed choice, no text) stay, as
statistics about a subject that no longer has a name.
"""

from __future__ import annotations

import sqlalchemy as sa

from compliance.registry import ErasureContext, ErasureReport, Provider, Registry
from saas.portal.models import PortalLink, PortalSession

NAME = "portal_sessions"


def erase(ctx: ErasureContext) -> ErasureReport:
    report = ErasureReport()
    customer_id = ctx.subject.customer_id
    ended = ctx.session.execute(
        sa.update(PortalSession)
        .where(PortalSession.customer_id == customer_id, PortalSession.ended_at.is_(None))
        .values(ended_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    spent = ctx.session.execute(
        sa.update(PortalLink)
        .where(PortalLink.customer_id == customer_id, PortalLink.used_at.is_(None))
        .values(used_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    report.count("portal_session_ended", int(getattr(ended, "rowcount", 0) or 0))
    report.count("portal_link_spent", int(getattr(spent, "rowcount", 0) or 0))
    return report


PROVIDER = Provider(
    name=NAME,
    covers=frozenset(),
    purpose="signing the customer in to the self-service portal (Art. 6(1)(b) GDPR)",
    retention="a link 5 minutes, a session one hour; ended at once on erasure",
    erase=erase,
    order=40,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
