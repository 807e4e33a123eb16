"""`abowerk staff create|list`: dashboard accounts of a tenant (one transaction each).

`create` prints the TOTP provisioning URI once (scan it into an authenticator app); the
password comes from a prompt, never from the command line, unless `--password-stdin`.
"""

from __future__ import annotations

import json
import sys

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from saas.dashboard import services
from saas.dashboard.models import ROLES, StaffAccount
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.kernel.errors import DomainError
from saas.kernel.secretbox import SecretBox


@click.group("staff")
def staff_cli() -> None:
    """Dashboard accounts of a tenant's staff."""


def _scope(session: sa.orm.Session, tenant_id: str) -> str:
    from saas.tenants.models import Tenant

    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise click.ClickException(f"no tenant {tenant_id}")
    tenancy.set_tenant(session, tenant_id)
    return tenant.slug


@staff_cli.command("create")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(ROLES), default="read_only", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def create_staff_cmd(
    tenant_id: str, email: str, role: str, password_stdin: bool, as_json: bool
) -> None:
    """Create an account; prints the TOTP provisioning URI (shown once)."""
    from saas.extensions import db

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    session = db.session()
    slug = _scope(session, tenant_id)
    settings = current_app.config["ABOWERK_SETTINGS"]
    box = SecretBox(settings.secret_key, settings.previous_secret_keys)
    try:
        new = services.create_staff_account(
            session, box, email=email, password=password, role=role, now=utcnow()
        )
        session.commit()
    except DomainError as err:
        session.rollback()
        raise click.ClickException(f"{err.code}: {err.detail} {err.errors or ''}".strip()) from err
    uri = new.provisioning_uri(issuer=f"abowerk {slug}")
    out = {"staff_id": new.account.id, "workspace": slug, "role": role, "totp_uri": uri}
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(f"staff {new.account.id} in workspace {slug} ({role})")
        click.echo(f"TOTP (add to an authenticator app; shown once): {uri}")


@staff_cli.command("list")
@click.option("--tenant", "tenant_id", required=True)
@with_appcontext
def list_staff_cmd(tenant_id: str) -> None:
    from saas.extensions import db

    session = db.session()
    _scope(session, tenant_id)
    for a in session.scalars(sa.select(StaffAccount).order_by(StaffAccount.email)):
        click.echo(json.dumps({"id": a.id, "email": a.email, "role": a.role}))
