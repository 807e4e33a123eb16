"""The erasure ledger: every erasure, kept apart from the main database.

A restore of the main database from a backup taken before an erasure brings the erased person
back. The ledger is what makes that recoverable: it lives in a store of its own (by default
the SQLite file `<VAR_DIR>/erasure-ledger.sqlite3`, or the database at
`ABOWERK_ERASURE_LEDGER_URL`), is not part of the main database's backups and restores, and
`abowerk gdpr reapply-erasures` replays every entry against the restored database.

An entry holds ids, the instant and what was done (counts per provider), never personal data.
It is written *before* the main transaction commits: if that commit then fails, the ledger
names an erasure that did not happen yet, and the next `reapply-erasures` carries it out.
That errs on the side of the person who asked to be erased; the reverse order could lose an
erasure silently.

The schema is created on first use (`CREATE TABLE IF NOT EXISTS`); it is not managed by the
main database's Alembic migrations, on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from saas.kernel.db import UTCDateTime

_meta = sa.MetaData()
ERASURES = sa.Table(
    "erasures",
    _meta,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False, index=True),
    sa.Column("customer_id", sa.String(40), nullable=False),
    sa.Column("livemode", sa.Boolean(), nullable=False),
    sa.Column("request_id", sa.String(40)),
    sa.Column("erased_at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("actions", sa.Text(), nullable=False),  # JSON: counts per provider
    sa.Column("reapplied_at", UTCDateTime()),
    sa.Column("reapply_count", sa.Integer(), nullable=False, default=0),
)


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    tenant_id: str
    customer_id: str
    livemode: bool
    request_id: str | None
    erased_at: datetime
    actor: str
    actions: dict[str, Any] = field(default_factory=dict)
    reapplied_at: datetime | None = None
    reapply_count: int = 0


class ErasureLedger(Protocol):
    def record(self, entry: LedgerEntry) -> None: ...

    def entries(self, tenant_id: str | None = None) -> list[LedgerEntry]: ...

    def mark_reapplied(self, entry_id: str, at: datetime) -> None: ...


def default_url(var_dir: Path) -> str:
    return f"sqlite:///{var_dir / 'erasure-ledger.sqlite3'}"


class SqlErasureLedger:
    """The ledger in a database of its own (SQLAlchemy Core, no ORM session, no tenancy
    hooks: it holds no tenant's business data and is read only by operators' commands)."""

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self._ready = False

    def _ensure_schema(self) -> None:
        if not self._ready:
            _meta.create_all(self._engine, checkfirst=True)
            self._ready = True

    def record(self, entry: LedgerEntry) -> None:
        self._ensure_schema()
        with self._engine.begin() as conn:
            conn.execute(
                ERASURES.insert().values(
                    id=entry.id,
                    tenant_id=entry.tenant_id,
                    customer_id=entry.customer_id,
                    livemode=entry.livemode,
                    request_id=entry.request_id,
                    erased_at=entry.erased_at,
                    actor=entry.actor,
                    actions=json.dumps(entry.actions, sort_keys=True),
                    reapplied_at=None,
                    reapply_count=0,
                )
            )

    def entries(self, tenant_id: str | None = None) -> list[LedgerEntry]:
        self._ensure_schema()
        stmt = sa.select(ERASURES).order_by(ERASURES.c.erased_at, ERASURES.c.id)
        if tenant_id is not None:
            stmt = stmt.where(ERASURES.c.tenant_id == tenant_id)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            LedgerEntry(
                id=row["id"],
                tenant_id=row["tenant_id"],
                customer_id=row["customer_id"],
                livemode=bool(row["livemode"]),
                request_id=row["request_id"],
                erased_at=row["erased_at"],
                actor=row["actor"],
                actions=json.loads(row["actions"]),
                reapplied_at=row["reapplied_at"],
                reapply_count=row["reapply_count"],
            )
            for row in rows
        ]

    def mark_reapplied(self, entry_id: str, at: datetime) -> None:
        self._ensure_schema()
        with self._engine.begin() as conn:
            conn.execute(
                ERASURES.update()
                .where(ERASURES.c.id == entry_id)
                .values(reapplied_at=at, reapply_count=ERASURES.c.reapply_count + 1)
            )

    def dispose(self) -> None:
        self._engine.dispose()
