"""The `abowerk` command: Flask's CLI bound to the app factory, plus operator commands.

`abowerk db upgrade` (Flask-Migrate), `abowerk tenants create`, `abowerk keys create|revoke|list`,
`abowerk oauth-clients create|revoke`, `abowerk demo`, `abowerk tax ...`, `abowerk metrics ...`,
`abowerk staff create|list`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.kernel.errors import DomainError


def _session() -> Any:
    from saas.extensions import db

    return db.session


def _fail(err: DomainError) -> None:
    raise click.ClickException(f"{err.code}: {err.detail} {err.errors or ''}".strip())


@click.group("tenants")
def tenants_cli() -> None:
    """Create and list tenants (sellers)."""


@tenants_cli.command("create")
@click.option("--name", required=True, help="Legal name of the seller.")
@click.option("--country", default="DE", show_default=True)
@click.option("--slug", default=None)
@click.option("--timezone", "tz", default="Europe/Berlin", show_default=True)
@click.option("--currency", default="EUR", show_default=True)
@click.option("--live", is_flag=True, help="Issue a live-mode key instead of a test-mode key.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def create_tenant_cmd(
    name: str, country: str, slug: str | None, tz: str, currency: str, live: bool, as_json: bool
) -> None:
    """Create a tenant and its first API key (printed once)."""
    from saas.auth.services import create_api_key
    from saas.tenants.services import create_tenant

    session = _session()
    now = utcnow()
    try:
        with tenancy.unscoped(session):
            tenant = create_tenant(
                session,
                name=name,
                now=now,
                country=country,
                slug=slug,
                timezone=tz,
                currency=currency,
            )
        tenancy.set_tenant(session, tenant.id)
        key, secret = create_api_key(session, tenant_id=tenant.id, now=now, livemode=live)
        session.commit()
    except DomainError as err:
        session.rollback()
        _fail(err)
        return
    out = {"tenant_id": tenant.id, "slug": tenant.slug, "api_key": secret, "api_key_id": key.id}
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(f"tenant {tenant.id} ({tenant.slug})\nAPI key (shown once): {secret}")


@tenants_cli.command("list")
@with_appcontext
def list_tenants_cmd() -> None:
    from saas.tenants.models import Tenant

    session = _session()
    for t in session.scalars(sa.select(Tenant).order_by(Tenant.created_at)):
        click.echo(
            json.dumps({"id": t.id, "slug": t.slug, "name": t.legal_name, "status": t.status})
        )


@click.group("keys")
def keys_cli() -> None:
    """Manage API keys of a tenant."""


@keys_cli.command("create")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--live", is_flag=True)
@click.option("--scope", "scopes", multiple=True, help="e.g. customers:read; default all.")
@click.option("--name", default="default")
@click.option("--expires-days", type=click.IntRange(min=1), default=None)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def create_key_cmd(
    tenant_id: str,
    live: bool,
    scopes: tuple[str, ...],
    name: str,
    expires_days: int | None,
    as_json: bool,
) -> None:
    from saas.auth.services import create_api_key

    session = _session()
    _require_tenant(session, tenant_id)
    now = utcnow()
    expires_at = now + timedelta(days=expires_days) if expires_days else None
    try:
        key, secret = create_api_key(
            session,
            tenant_id=tenant_id,
            now=now,
            livemode=live,
            scopes=list(scopes) or None,
            name=name,
            expires_at=expires_at,
        )
        session.commit()
    except DomainError as err:
        session.rollback()
        _fail(err)
        return
    out = {"api_key_id": key.id, "api_key": secret, "scopes": key.scopes, "livemode": live}
    click.echo(json.dumps(out) if as_json else f"{key.id}: {secret}")


@keys_cli.command("revoke")
@click.option("--tenant", "tenant_id", required=True)
@click.argument("key_id")
@with_appcontext
def revoke_key_cmd(tenant_id: str, key_id: str) -> None:
    from saas.auth.services import revoke_api_key

    session = _session()
    _require_tenant(session, tenant_id)
    try:
        key = revoke_api_key(session, key_id=key_id, now=utcnow())
        session.commit()
    except DomainError as err:
        session.rollback()
        _fail(err)
        return
    click.echo(f"revoked {key.id}")


@keys_cli.command("list")
@click.option("--tenant", "tenant_id", required=True)
@with_appcontext
def list_keys_cmd(tenant_id: str) -> None:
    from saas.auth.models import ApiKey

    session = _session()
    _require_tenant(session, tenant_id)
    for k in session.scalars(sa.select(ApiKey).order_by(ApiKey.created_at)):
        click.echo(
            json.dumps(
                {
                    "id": k.id,
                    "name": k.name,
                    "key": f"{k.prefix}…{k.last4}",
                    "scopes": k.scopes,
                    "revoked": k.revoked_at is not None,
                    "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                },
                ensure_ascii=False,
            )
        )


@click.group("oauth-clients")
def oauth_clients_cli() -> None:
    """Manage OAuth 2.0 clients (client-credentials grant) of a tenant."""


@oauth_clients_cli.command("create")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--live", is_flag=True)
@click.option("--scope", "scopes", multiple=True)
@click.option("--name", default="default")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def create_oauth_client_cmd(
    tenant_id: str, live: bool, scopes: tuple[str, ...], name: str, as_json: bool
) -> None:
    from saas.auth.services import create_oauth_client

    session = _session()
    _require_tenant(session, tenant_id)
    try:
        client, secret = create_oauth_client(
            session,
            tenant_id=tenant_id,
            now=utcnow(),
            livemode=live,
            scopes=list(scopes) or None,
            name=name,
        )
        session.commit()
    except DomainError as err:
        session.rollback()
        _fail(err)
        return
    out = {"client_id": client.client_id, "client_secret": secret, "scopes": client.scopes}
    click.echo(json.dumps(out) if as_json else f"{client.client_id}: {secret}")


@oauth_clients_cli.command("revoke")
@click.option("--tenant", "tenant_id", required=True)
@click.argument("client_id")
@with_appcontext
def revoke_oauth_client_cmd(tenant_id: str, client_id: str) -> None:
    from saas.auth.services import revoke_oauth_client

    session = _session()
    _require_tenant(session, tenant_id)
    try:
        revoke_oauth_client(session, client_id=client_id, now=utcnow())
        session.commit()
    except DomainError as err:
        session.rollback()
        _fail(err)
        return
    click.echo(f"revoked {client_id}")


@click.command("demo")
@with_appcontext
def demo_cmd() -> None:
    """Create the demo tenant and print its API key, unless it exists already."""
    from saas.auth.services import create_api_key
    from saas.tenants.models import Tenant
    from saas.tenants.services import create_tenant

    session = _session()
    existing = session.scalars(sa.select(Tenant).where(Tenant.slug == "demo")).first()
    if existing is not None:
        click.echo(
            f"demo tenant {existing.id} exists; its key was printed on first run "
            f"(new one: abowerk keys create --tenant {existing.id})"
        )
        return
    now = utcnow()
    with tenancy.unscoped(session):
        tenant = create_tenant(session, name="Demo GmbH", slug="demo", now=now)
    tenancy.set_tenant(session, tenant.id)
    _, secret = create_api_key(session, tenant_id=tenant.id, now=now, name="demo")
    session.commit()
    click.echo(f"demo tenant {tenant.id} created.\nAPI key (shown once): {secret}")


@click.command("worker")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Worker threads; 0 runs only the scheduler (it queues the periodic tasks, runs none).",
)
@click.option("--no-periodic", is_flag=True, help="Do not run the scheduler in this process.")
@click.option(
    "--metrics-bind",
    envvar="ABOWERK_WORKER_METRICS_BIND",
    default=None,
    help="Serve Prometheus metrics on HOST:PORT (e.g. 0.0.0.0:9100); off by default.",
)
@with_appcontext
def worker_cmd(workers: int, no_periodic: bool, metrics_bind: str | None) -> None:
    """Run the background worker (Huey consumer with its scheduler)."""
    from huey.consumer import Consumer

    from saas.worker import huey

    if huey.immediate:
        raise click.ClickException("ABOWERK_TASKS_IMMEDIATE is set: tasks run inline, no worker")
    if metrics_bind:
        from saas.observability import serve_worker_metrics

        serve_worker_metrics(metrics_bind)
    # SIGTERM (what docker, systemd and Kubernetes send) stops gracefully: running tasks
    # finish first; SIGINT stops at once
    consumer = Consumer(
        huey,
        workers=workers,
        worker_type="thread",
        periodic=not no_periodic,
        graceful_signal="TERM",
    )
    consumer.run()


@click.command("backup")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Backup file (default: VAR_DIR/backups/abowerk-<UTC time>.<sqlite3|dump>).",
)
@with_appcontext
def backup_cmd(output: Path | None) -> None:
    """Back up the whole database (pg_dump on PostgreSQL, online backup on SQLite)."""
    from flask import current_app

    from saas.ops.backup import BackupError, backup

    settings = current_app.config["ABOWERK_SETTINGS"]
    if output is None:
        suffix = "sqlite3" if settings.database_url.startswith("sqlite") else "dump"
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        output = settings.var_dir / "backups" / f"abowerk-{stamp}.{suffix}"
    try:
        path = backup(settings.database_url, output)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(path))


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore_cmd(source: Path, yes: bool) -> None:
    """Restore a backup into the configured (empty) database; stop the platform first."""
    from flask import current_app

    from saas.ops.backup import BackupError, restore

    settings = current_app.config["ABOWERK_SETTINGS"]
    if not yes:
        click.confirm(f"Restore {source} into {settings.database_url}?", abort=True)
    try:
        restore(settings.database_url, source)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("restored")


@click.group("secrets")
def secrets_cli() -> None:
    """Secrets at rest (webhook signing secrets, later payment provider keys)."""


@secrets_cli.command("reencrypt")
@with_appcontext
def reencrypt_cmd() -> None:
    """Re-encrypt every stored secret under the current ABOWERK_SECRET_KEY."""
    from flask import current_app

    from saas.extensions import db
    from saas.kernel.secretbox import SecretBox
    from saas.ops.secrets import reencrypt_all

    settings = current_app.config["ABOWERK_SETTINGS"]
    count = reencrypt_all(db.engine, SecretBox(settings.secret_key, settings.previous_secret_keys))
    click.echo(f"re-encrypted {count} secret(s)")


def _require_tenant(session: Any, tenant_id: str) -> None:
    from saas.tenants.models import Tenant

    if session.get(Tenant, tenant_id) is None:
        raise click.ClickException(f"no tenant {tenant_id}")
    tenancy.set_tenant(session, tenant_id)


def register_commands(app: Flask) -> None:
    from billing.runs.cli import billing_cli
    from billing.taxreports.cli import tax_cli  # tax.cli's commands + the ledger reports
    from saas.dashboard.cli import staff_cli
    from saas.metrics.cli import metrics_cli

    for command in (
        tenants_cli,
        keys_cli,
        oauth_clients_cli,
        demo_cmd,
        worker_cmd,
        backup_cmd,
        restore_cmd,
        secrets_cli,
        tax_cli,
        metrics_cli,
        billing_cli,
        staff_cli,
    ):
        app.cli.add_command(command)


def _create_app() -> Flask:
    from saas.app import create_app

    return create_app()


cli = FlaskGroup(create_app=_create_app, add_default_commands=True, set_debug_flag=False)


def main() -> None:
    cli(prog_name="abowerk")
