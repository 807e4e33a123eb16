"""`abowerk metrics movements`: monthly MRR movements of an event file, for analysts and for
checking the definitions against other data. Pure: no database, no app.

    abowerk metrics movements events.jsonl --from 2025-01 --to 2025-12 [--timezone Europe/Berlin]

reads JSON lines (format in `billing.metrics.eventfile`) from FILE or stdin and prints
`{"currency": ..., "months": [{"month": "2025-01", "starting_mrr": "0.00", ...}, ...]}`
with amounts as decimal strings (churn and contraction negative) and rates as decimal
fractions with 4 places (null when the denominator is 0). Events before `--from` count for
the starting MRR and for "never had MRR before". A file in several currencies needs
`--currency`, since amounts in different currencies do not add up. Bad lines are printed to
stderr with their numbers and nothing is computed (exit status 1).

Also runs as `python -m billing.metrics.cli movements ...`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from billing.metrics.eventfile import EventFileError, read_events
from billing.metrics.money import decimal_string
from billing.metrics.months import (
    Month,
    MonthSummary,
    aggregate_movements,
    month_range,
    summarize_months,
)
from billing.metrics.movements import movements_from_levels


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def summary_json(summary: MonthSummary) -> dict[str, Any]:
    """The CLI's month object (the issue's field list, in its order)."""
    ccy = summary.currency
    return {
        "month": str(summary.month),
        "starting_mrr": decimal_string(summary.starting_mrr, ccy),
        "new": decimal_string(summary.new, ccy),
        "expansion": decimal_string(summary.expansion, ccy),
        "contraction": decimal_string(summary.contraction, ccy),
        "churn": decimal_string(summary.churn, ccy),
        "reactivation": decimal_string(summary.reactivation, ccy),
        "ending_mrr": decimal_string(summary.ending_mrr, ccy),
        "customers_start": summary.customers_start,
        "customers_end": summary.customers_end,
        "churned_customers": summary.churned_customers,
        "logo_churn_rate": _rate(summary.logo_churn_rate),
        "gross_mrr_churn_rate": _rate(summary.gross_mrr_churn_rate),
        "net_mrr_churn_rate": _rate(summary.net_mrr_churn_rate),
    }


def _month(text: str, option: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def compute(
    lines: IO[str], first: Month, last: Month, zone: ZoneInfo, currency: str | None
) -> dict[str, Any]:
    """The command's output document; `EventFileError` or `click.UsageError` on bad input."""
    changes = read_events(lines)
    found = sorted({c.currency for c in changes})
    if currency is None:
        if len(found) > 1:
            raise click.UsageError(
                f"the file has several currencies ({', '.join(found)}): choose one with --currency"
            )
        currency = found[0] if found else None
    movements = [m for m in movements_from_levels(changes) if m.currency == currency]
    per_currency = aggregate_movements(movements, zone, first)
    data = per_currency.get(currency) if currency else None
    summaries = summarize_months(
        currency or "",
        month_range(first, last),
        opening_mrr=data.opening_mrr if data else 0,
        opening_customers=data.opening_customers if data else 0,
        aggregates=data.aggregates if data else {},
    )
    return {"currency": currency, "months": [summary_json(s) for s in summaries]}


@click.command("movements")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--from", "first_text", required=True, help="First month, YYYY-MM.")
@click.option("--to", "last_text", required=True, help="Last month, YYYY-MM (included).")
@click.option(
    "--timezone",
    "tz",
    default="Europe/Berlin",
    show_default=True,
    help="The zone whose months count (the tenant's).",
)
@click.option("--currency", default=None, help="The currency to report (files with several).")
def movements_command(
    file: IO[str], first_text: str, last_text: str, tz: str, currency: str | None
) -> None:
    """Monthly MRR movements of the subscription changes in FILE (JSON lines; stdin when
    omitted)."""
    first = _month(first_text, "--from")
    last = _month(last_text, "--to")
    if last < first:
        raise click.BadParameter(f"{last} is before {first}", param_hint="--to")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {tz!r}", param_hint="--timezone") from None
    try:
        document = compute(file, first, last, zone, currency)
    except EventFileError as exc:
        click.echo(f"Error: {len(exc.errors)} bad line(s), nothing computed:", err=True)
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@click.group("metrics")
def metrics_cli() -> None:
    """MRR metrics that need no database."""


metrics_cli.add_command(movements_command)

if __name__ == "__main__":
    metrics_cli()
