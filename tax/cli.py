"""Command line for tax advisers and for checking cases: ``abowerk tax ...``.

* ``abowerk tax decide [FILE]`` reads a JSON array of cases (format in :mod:`tax.cases`)
  from FILE or stdin and prints a JSON array with one decision (or error object) per
  case, in order. Options set the :class:`tax.model.TaxPolicy` defaults.
* ``abowerk tax oss-return --quarter 2026-Q1 [FILE]`` reads a JSON array of OSS records
  and prints the return as JSON or as the BZSt CSV.

The group is registered in the ``abowerk`` console script with ``add_command``; it also
runs as ``python -m tax.cli``.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import IO, Any

import click

from tax.cases import decide_cases
from tax.errors import TaxError
from tax.model import FoundingYearCrossing, TaxPolicy
from tax.oss import OssRecord, Quarter, RateType, build_oss_return


def _read_json_array(stream: IO[str]) -> list[Any]:
    try:
        # Decimal for numbers: amounts must never pass through binary floats.
        data = json.load(stream, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"input is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise click.ClickException("input must be a JSON array")
    return data


def _dump(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


@click.group("tax")
def tax_cli() -> None:
    """VAT decisions, OSS returns and checks for tax advisers."""


@tax_cli.command("decide")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--founding-year-crossing",
    type=click.Choice([mode.value for mode in FoundingYearCrossing]),
    default=FoundingYearCrossing.FROM_CROSSING_SUPPLY.value,
    show_default=True,
    help="What crossing 25,000 EUR in a Kleinunternehmer's founding year does.",
)
@click.option(
    "--exempt-at-exact-limit/--taxable-at-exact-limit",
    default=True,
    show_default=True,
    help="Whether a total of exactly a small-business limit is still exempt.",
)
@click.option(
    "--ku-reverse-charge-wording/--no-ku-reverse-charge-wording",
    default=True,
    show_default=True,
    help="Reverse-charge note and EC sales list for a Kleinunternehmer's EU B2B supplies.",
)
def decide_command(
    file: IO[str],
    founding_year_crossing: str,
    exempt_at_exact_limit: bool,
    ku_reverse_charge_wording: bool,
) -> None:
    """Decide the cases in FILE (a JSON array; stdin when omitted)."""
    policy = TaxPolicy(
        founding_year_crossing=FoundingYearCrossing(founding_year_crossing),
        exempt_at_exact_limit=exempt_at_exact_limit,
        kleinunternehmer_reverse_charge_wording=ku_reverse_charge_wording,
    )
    click.echo(_dump(decide_cases(_read_json_array(file), policy)))


def _record(raw: object, index: int) -> OssRecord:
    field = f"records[{index}]"
    if not isinstance(raw, dict):
        raise click.ClickException(f"{field} must be a JSON object")
    try:
        corrects = raw.get("corrects")
        return OssRecord(
            supplied_on=date.fromisoformat(str(raw["supplied_on"])),
            member_state=str(raw["member_state"]),
            rate=Decimal(str(raw["rate"])),
            net=Decimal(str(raw["net"])),
            vat=Decimal(str(raw["vat"])),
            currency=str(raw.get("currency") or "EUR"),
            corrects=None if corrects is None else Quarter.parse(str(corrects)),
            rate_type=RateType(str(raw.get("rate_type") or RateType.STANDARD.value)),
        )
    except KeyError as exc:
        raise click.ClickException(f"{field}: missing field {exc.args[0]}") from None
    except (ArithmeticError, ValueError) as exc:
        raise click.ClickException(f"{field}: {exc}") from None


@tax_cli.command("oss-return")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--quarter", "quarter_text", required=True, help="The quarter, e.g. 2026-Q1.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["json", "csv"]),
    default="json",
    show_default=True,
    help="JSON return or the BZSt upload CSV (files separated by a blank line).",
)
@click.option("--seller-country", default="DE", show_default=True)
def oss_return_command(file: IO[str], quarter_text: str, output: str, seller_country: str) -> None:
    """Build the OSS return of a quarter from the OSS records in FILE (a JSON array)."""
    try:
        quarter = Quarter.parse(quarter_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--quarter") from None
    records = [_record(raw, index) for index, raw in enumerate(_read_json_array(file))]
    try:
        oss_return = build_oss_return(records, quarter, seller_country=seller_country)
    except TaxError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    if output == "csv":
        click.echo("\n".join(oss_return.to_csv()), nl=False)
    else:
        click.echo(_dump(oss_return.to_json()))


if __name__ == "__main__":
    tax_cli()
