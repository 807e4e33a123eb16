"""``abowerk tax``: the pure adviser commands of :mod:`tax.cli` plus the reports of a
tenant's ledger.

* ``abowerk tax oss-return --tenant ID --quarter 2026Q3 [--mode live|test] [--csv]``: the
  OSS return from the tenant's finalized invoices and credit notes (JSON, or the BZSt CSV);
  without ``--tenant`` it builds the return from a JSON file of records, as before.
* ``abowerk tax ec-sales-list --tenant ID --quarter 2026Q3 [--mode live|test] [--csv]``: the
  EC sales list (Zusammenfassende Meldung).

The numbers are those of ``GET /v1/tax/oss-return`` and ``GET /v1/tax/ec-sales-list``.
"""

from __future__ import annotations

import json
from typing import IO, Any

import click
from flask.cli import ScriptInfo

from saas.kernel import tenancy
from saas.kernel.errors import DomainError
from tax.cli import oss_return_command as file_oss_return_command
from tax.cli import tax_cli as pure_tax_cli
from tax.oss import Quarter

_MODES = {"live": True, "test": False}


def _quarter(text: str) -> Quarter:
    try:
        return Quarter.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--quarter") from None


def _run(tenant_id: str, livemode: bool, build: Any) -> Any:
    """Run ``build(session)`` for the tenant inside the app, read-only."""
    app = click.get_current_context().ensure_object(ScriptInfo).load_app()
    with app.app_context():
        from saas.extensions import db
        from saas.tenants.models import Tenant

        session = db.session
        if session.get(Tenant, tenant_id) is None:
            raise click.ClickException(f"no tenant {tenant_id}")
        tenancy.set_tenant(session, tenant_id, livemode=livemode)
        try:
            return build(session())
        except DomainError as err:
            detail = f"{err.code}: {err.detail} {err.errors or ''}".strip()
            raise click.ClickException(detail) from None
        finally:
            session.rollback()


def _dump(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


_tenant = click.option("--tenant", "tenant_id", default=None, help="Build from this tenant.")
_mode = click.option("--mode", type=click.Choice(sorted(_MODES)), default="live", show_default=True)
_csv = click.option("--csv", "as_csv", is_flag=True, help="CSV instead of JSON.")


@click.command("oss-return")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--quarter", "quarter_text", required=True, help="The quarter, e.g. 2026Q3.")
@_tenant
@_mode
@_csv
@click.option(
    "--format",
    "output",
    type=click.Choice(["json", "csv"]),
    default="json",
    show_default=True,
    help="JSON return or the BZSt upload CSV.",
)
@click.option("--seller-country", default="DE", show_default=True, help="Without --tenant.")
@click.pass_context
def oss_return_command(  # noqa: PLR0917  (click passes every option by name)
    ctx: click.Context,
    file: IO[str],
    quarter_text: str,
    tenant_id: str | None,
    mode: str,
    as_csv: bool,
    output: str,
    seller_country: str,
) -> None:
    """The OSS return of a quarter: from a tenant's ledger (--tenant), or from the OSS
    records in FILE (a JSON array)."""
    quarter = _quarter(quarter_text)
    csv_out = as_csv or output == "csv"
    if tenant_id is None:
        ctx.invoke(
            file_oss_return_command,
            file=file,
            quarter_text=str(quarter),
            output="csv" if csv_out else "json",
            seller_country=seller_country,
        )
        return
    from billing.taxreports.services import oss_return

    livemode = _MODES[mode]
    report = _run(tenant_id, livemode, lambda s: oss_return(s, livemode=livemode, quarter=quarter))
    if csv_out:
        click.echo("".join(report.to_csv()), nl=False)
    else:
        click.echo(_dump({"object": "tax.oss_return", "livemode": livemode, **report.to_json()}))


@click.command("ec-sales-list")
@click.option("--quarter", "quarter_text", required=True, help="The quarter, e.g. 2026Q3.")
@click.option("--tenant", "tenant_id", required=True, help="The tenant.")
@_mode
@_csv
def ec_sales_list_command(quarter_text: str, tenant_id: str, mode: str, as_csv: bool) -> None:
    """The EC sales list (Zusammenfassende Meldung) of a quarter from a tenant's ledger."""
    from billing.taxreports.services import ec_sales_csv, ec_sales_list

    quarter = _quarter(quarter_text)
    livemode = _MODES[mode]
    report = _run(
        tenant_id, livemode, lambda s: ec_sales_list(s, livemode=livemode, quarter=quarter)
    )
    if as_csv:
        click.echo(ec_sales_csv(report), nl=False)
    else:
        click.echo(_dump({"object": "tax.ec_sales_list", "livemode": livemode, **report.to_json()}))


tax_cli = click.Group(
    "tax",
    help=pure_tax_cli.help,
    commands={
        **pure_tax_cli.commands,
        "oss-return": oss_return_command,
        "ec-sales-list": ec_sales_list_command,
    },
)
