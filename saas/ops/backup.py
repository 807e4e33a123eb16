"""Backups and restores of the whole database.

PostgreSQL: `pg_dump --format=custom` as the login role, which owns the tables and so is not
filtered by row-level security (the tables are not FORCE'd): every tenant's rows go into the
dump. Restore with `pg_restore` into an empty database, then `abowerk db upgrade` is a no-op.

SQLite (embedded): the online backup API copies a consistent snapshot while the platform
keeps running; restore copies it back with the same API (stop the platform first).

`table_checksums` hashes every row of every table in primary-key order, so a restore drill can
prove that the financial records came back exactly.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
from pathlib import Path

import sqlalchemy as sa


class BackupError(RuntimeError):
    pass


def _libpq_url(url: sa.URL) -> str:
    """pg_dump speaks libpq URLs: no `+psycopg` driver suffix."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: sa.URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def backup(database_url: str, destination: Path) -> Path:
    url = sa.make_url(database_url)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        target = sqlite3.connect(destination)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        return destination
    if url.get_backend_name() == "postgresql":
        result = subprocess.run(  # noqa: S603  (fixed tool, arguments are not shell-parsed)
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--file",
                str(destination),
                "--dbname",
                _libpq_url(url),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
        return destination
    raise BackupError(f"no backup method for {url.get_backend_name()}")


def restore(database_url: str, source: Path) -> None:
    """Restore into the (empty) database at `database_url`."""
    if not source.exists():
        raise BackupError(f"no backup file {source}")
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        src = sqlite3.connect(source)
        dst = sqlite3.connect(_sqlite_path(url))
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
            src.close()
        return
    if url.get_backend_name() == "postgresql":
        result = subprocess.run(  # noqa: S603
            [
                _tool("pg_restore"),
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                "--dbname",
                _libpq_url(url),
                str(source),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
        return
    raise BackupError(f"no restore method for {url.get_backend_name()}")


def table_checksums(engine: sa.Engine) -> dict[str, str]:
    """SHA-256 over every row of every table, in primary-key order, as the owner sees them."""
    meta = sa.MetaData()
    meta.reflect(bind=engine)
    sums: dict[str, str] = {}
    with engine.connect() as conn:
        for table in sorted(meta.tables.values(), key=lambda t: t.name):
            order = list(table.primary_key.columns) or list(table.columns)
            digest = hashlib.sha256()
            for row in conn.execute(sa.select(table).order_by(*order)):
                digest.update(repr(tuple(row)).encode())
                digest.update(b"\n")
            sums[table.name] = digest.hexdigest()
    return sums
