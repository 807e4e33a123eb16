"""Sessions for background work: one tenant, own transaction, never the request's session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.kernel import tenancy
from saas.kernel.errors import TenantContextMissingError


class TaskSession(Session):
    """Scoped like the request session (tenancy hooks are installed on this class too)."""


tenancy.install(TaskSession)


@contextmanager
def tenant_session(engine: sa.Engine, tenant_id: str) -> Iterator[Session]:
    """A session bound to one tenant: every task sets its tenant before touching data."""
    if not tenant_id:
        raise TenantContextMissingError("a task ran without a tenant_id")
    session = TaskSession(bind=engine, expire_on_commit=False)
    tenancy.set_tenant(session, tenant_id)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
