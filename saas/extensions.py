"""Flask extensions, created unbound and initialised in the app factory (`init_app`)."""

from __future__ import annotations

import select
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.orm import Session

from saas.events import services as events
from saas.kernel import tenancy
from saas.kernel.db import Base
from saas.kernel.tasks import TaskSession

if TYPE_CHECKING:
    from saas.http.ratelimit import RateLimiter


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


def make_limiter() -> RateLimiter:
    """One limiter per app: its storage (memory or Redis) is bound at init_app."""
    from saas.http.ratelimit import RateLimiter, rate_limit_key

    return RateLimiter(key_func=rate_limit_key)


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

    if engine.dialect.name == "postgresql":
        _check_liveness_on_checkout(engine)
    if engine.dialect.name == "postgresql" and app_role:

        @sa.event.listens_for(engine, "connect")
        def _pg_role(dbapi_conn: Any, _record: Any) -> None:
            # The login role may own the tables (and owners or superusers bypass RLS);
            # switching to the app role makes every policy apply to every query.
            cur = dbapi_conn.cursor()
            cur.execute(f'SET ROLE "{app_role}"')
            cur.close()
            dbapi_conn.commit()


# A pooled connection idle for longer than this is pinged before use; one used more recently
# is trusted unless the server has written to it while it sat in the pool.
PING_IF_IDLE_FOR = 10.0  # seconds
_IDLE_SINCE = "abowerk.idle_since"


def _check_liveness_on_checkout(engine: sa.Engine) -> None:
    """A cheaper `pool_pre_ping` for PostgreSQL (which config.py therefore leaves off there).

    The pre-ping costs a round trip on every checkout, that is on every request and twice on
    a request with an Idempotency-Key. But a connection that the server ended while it was
    idle in the pool (`pg_terminate_backend`, a restart, an idle timeout) has the server's
    last words waiting in its socket: PostgreSQL sends a FATAL error before it closes, and
    the closing itself makes the socket readable. An idle connection never has anything else
    to read (nothing here uses LISTEN). So: ping only a connection whose socket has something
    to read, or that sat idle long enough for a silent drop (a firewall, a NAT timeout) to be
    plausible; a failed ping makes the pool replace it (`DisconnectionError`), as the pre-ping
    did. A connection that breaks during a request is handled as before: SQLAlchemy
    invalidates it (and the pool's older connections), and the request answers 503
    (saas.http.transaction)."""

    @sa.event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _idle(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _alive(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if (
            idle_since is not None
            and time.monotonic() - idle_since < PING_IF_IDLE_FOR
            and not _server_has_spoken(dbapi_conn)
        ):
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc


def _server_has_spoken(dbapi_conn: Any) -> bool:
    """True if the idle connection's socket has data or EOF to read (or cannot be checked)."""
    try:
        if dbapi_conn.closed or dbapi_conn.broken:
            return True
        poller = select.poll()  # not select.select: a worker may hold more than 1024 files
        poller.register(dbapi_conn.pgconn.socket, select.POLLIN)
        events = poller.poll(0)  # POLLIN, or POLLHUP/POLLERR, which poll always reports
    except Exception:  # no socket to look at: let the ping decide
        return True
    return bool(events)
