"""Flask extensions, created unbound and initialised in the app factory (`init_app`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.orm import Session

from saas.events import services as events
from saas.kernel import tenancy
from saas.kernel.db import Base
from saas.kernel.tasks import TaskSession


class AppSession(FlaskSession):
    """The application's session class: tenant scoping hooks are attached to it."""


tenancy.install(AppSession)
events.install(AppSession)
events.install(TaskSession)

db = SQLAlchemy(
    metadata=Base.metadata,
    session_options={"class_": AppSession, "expire_on_commit": False},
)
migrate = Migrate()


def session() -> Session:
    """The current request's (or app context's) session, typed as a plain Session."""
    return db.session()


def make_limiter() -> Limiter:
    """One limiter per app: its storage (memory or Redis) is bound at init_app."""
    from saas.http.ratelimit import AppLimiter, rate_limit_key

    return AppLimiter(key_func=rate_limit_key)


def configure_engine(engine: sa.Engine, *, app_role: str) -> None:
    """Per-connection settings: SQLite pragmas; on PostgreSQL the app's RLS-bound role."""
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode at checkpoints
            cur.close()

    elif engine.dialect.name == "postgresql" and app_role:

        @sa.event.listens_for(engine, "connect")
        def _pg_role(dbapi_conn: Any, _record: Any) -> None:
            # The login role may own the tables (and owners or superusers bypass RLS);
            # switching to the app role makes every policy apply to every query.
            cur = dbapi_conn.cursor()
            cur.execute(f'SET ROLE "{app_role}"')
            cur.close()
            dbapi_conn.commit()
