"""`/v1/metrics`: MRR, movements, churn, cohorts and the ledger reconciliation (scope
`metrics`), as JSON, CSV or pictures (SVG/PNG) for the dashboard.

Every report reads the credential's mode (test-mode keys see test-mode customers, as
everywhere) and covers `from`…`to` in the tenant's time zone. JSON amounts are integer minor
units per month; CSV amounts are decimals in the currency (one row per series and month:
`series` is the currency, or `total` for the total in the reporting currency, converted at ECB
month-end rates from offline data).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response
from flask.views import MethodView

from billing.metrics import charts, queries
from billing.metrics.fx import EcbMonthEndRates
from billing.metrics.money import decimal_string
from billing.metrics.months import Month, MonthSummary, month_range, summarize_months
from saas.auth.middleware import current_principal, requires
from saas.extensions import session
from saas.http.api import Blueprint
from saas.http.formats import BINARY, TEXT, also_answers, csv_download
from saas.kernel.clock import utcnow
from saas.kernel.errors import ValidationFailedError
from saas.metrics.schemas import (
    MAX_MONTHS,
    CohortArgs,
    CohortReportSchema,
    DifferenceSchema,
    MetricsArgs,
    ReconciliationArgs,
    ReconciliationSchema,
    ReportSchema,
    TableArgs,
)
from saas.tenants.models import Tenant

blp = Blueprint(
    "mrr_metrics", __name__, url_prefix="/v1/metrics", description="MRR metrics"
)  # "metrics" is the Prometheus endpoint's blueprint

_PROBLEMS = (400, 401, 403, 422, 429)
MRR_FIELDS = (
    "month", "starting_mrr", "ending_mrr", "net_new_mrr", "arr", "customers_start",
    "customers_end", "arpa",
)  # fmt: skip
MOVEMENT_FIELDS = (
    "month", "starting_mrr", "new", "expansion", "contraction", "churn", "reactivation",
    "ending_mrr", "net_new_mrr", "customers_start", "customers_end", "new_customers",
    "reactivated_customers", "churned_customers",
)  # fmt: skip
CHURN_FIELDS = (
    "month", "customers_start", "churned_customers", "logo_churn_rate", "starting_mrr",
    "churn", "contraction", "expansion", "reactivation", "gross_mrr_churn_rate",
    "net_mrr_churn_rate", "net_revenue_retention", "trials_ended", "trials_converted",
    "trial_conversion_rate",
)  # fmt: skip
AMOUNT_FIELDS = frozenset(
    {"starting_mrr", "new", "expansion", "contraction", "churn", "reactivation", "ending_mrr",
     "net_new_mrr", "arr", "arpa", "currency_effect"}
)  # fmt: skip


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _line(s: MonthSummary, trials: queries.Trials | None = None) -> dict[str, Any]:
    trials = trials or queries.Trials()
    return {
        "month": str(s.month),
        "starting_mrr": s.starting_mrr,
        "new": s.new,
        "expansion": s.expansion,
        "contraction": s.contraction,
        "churn": s.churn,
        "reactivation": s.reactivation,
        "ending_mrr": s.ending_mrr,
        "net_new_mrr": s.net_new_mrr,
        "arr": s.arr,
        "arpa": s.arpa,
        "customers_start": s.customers_start,
        "customers_end": s.customers_end,
        "new_customers": s.new_customers,
        "reactivated_customers": s.reactivated_customers,
        "churned_customers": s.churned_customers,
        "logo_churn_rate": _rate(s.logo_churn_rate),
        "gross_mrr_churn_rate": _rate(s.gross_mrr_churn_rate),
        "net_mrr_churn_rate": _rate(s.net_mrr_churn_rate),
        "net_revenue_retention": _rate(s.net_revenue_retention),
        "trials_ended": trials.ended,
        "trials_converted": trials.converted,
        "trial_conversion_rate": _rate(trials.conversion_rate),
    }


def _range(args: dict[str, Any], zone: ZoneInfo) -> tuple[Month, Month]:
    last = Month.parse(args["to"]) if args["to"] else Month.of(utcnow(), zone)
    first = Month.parse(args["from_"]) if args["from_"] else last.shift(-11)
    if last < first:
        raise ValidationFailedError(
            "`to` is before `from`", errors={"to": [f"must not be before {first}"]}
        )
    if last.minus(first) >= MAX_MONTHS:
        raise ValidationFailedError(
            f"at most {MAX_MONTHS} months per report",
            errors={"from": [f"at most {MAX_MONTHS} months before `to`"]},
        )
    return first, last


def _context() -> tuple[str, bool, Tenant]:
    principal = current_principal()
    tenant = session().get(Tenant, principal.tenant_id)
    if tenant is None:  # the credential's tenant exists, or authentication failed
        raise RuntimeError("the authenticated tenant does not exist")
    return principal.tenant_id, bool(principal.livemode), tenant


def _report(args: dict[str, Any], *, with_trials: bool = False) -> queries.MetricsReport:
    tenant_id, livemode, tenant = _context()
    first, last = _range(args, ZoneInfo(tenant.timezone))
    return queries.metrics_report(
        session(),
        tenant_id,
        livemode,
        first,
        last,
        rates=EcbMonthEndRates(),
        with_trials=with_trials,
    )


def _series_lines(
    report: queries.MetricsReport, currency: str, fields: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in _line(s, report.trials.get((currency, s.month))).items() if k in fields}
        for s in report.currencies[currency]
    ]


def _total_lines(report: queries.MetricsReport, fields: Sequence[str]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for tm in report.total.months if report.total is not None else ():
        trials = queries.Trials(
            sum(t.ended for (_, m), t in report.trials.items() if m == tm.summary.month),
            sum(t.converted for (_, m), t in report.trials.items() if m == tm.summary.month),
        )
        line = {k: v for k, v in _line(tm.summary, trials).items() if k in fields}
        line["rates"] = [
            {
                "currency": r.currency,
                "rate": str(r.rate),
                "published_on": r.published_on,
                "provisional": r.provisional,
            }
            for r in tm.rates
        ]
        line["currency_effect"] = tm.currency_effect
        lines.append(line)
    return lines


def _document(
    obj: str, report: queries.MetricsReport, fields: Sequence[str], currency: str | None
) -> dict[str, Any]:
    currencies = [c for c in report.currencies if currency is None or c == currency]
    total = None
    if currency is None and report.total is not None:
        total = {
            "currency": report.total.currency,
            "conversion": f"each month at its month-end rate: {report.total.source}",
            "missing_rates": list(report.total.missing_rates),
            "months": _total_lines(report, fields),
        }
    return {
        "object": obj,
        "from_": str(report.first),
        "to": str(report.last),
        "timezone": report.timezone,
        "livemode": report.livemode,
        "reporting_currency": report.reporting_currency,
        "currencies": [
            {"currency": c, "months": _series_lines(report, c, fields)} for c in currencies
        ],
        "total": total,
    }


def _csv(name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return csv_download(buffer.getvalue(), name)


def _csv_value(field: str, value: Any, currency: str) -> Any:
    if field in AMOUNT_FIELDS and isinstance(value, int):
        return decimal_string(value, currency)
    return "" if value is None else value


def _report_csv(name: str, document: dict[str, Any], fields: Sequence[str]) -> Response:
    rows = []
    series = [(s["currency"], s["currency"], s["months"]) for s in document["currencies"]]
    if document["total"] is not None:
        total = document["total"]
        series.append(("total", total["currency"], total["months"]))
    for label, currency, months in series:
        for line in months:
            rows.append([label, currency, *(_csv_value(f, line.get(f), currency) for f in fields)])
    return _csv(name, ["series", "currency", *fields], rows)


def _picture(data: bytes, fmt: str) -> Response:
    return Response(data, mimetype=charts.MIME[fmt])


def _chart_series(report: queries.MetricsReport, currency: str | None) -> list[MonthSummary]:
    ccy = currency or report.reporting_currency
    if ccy in report.currencies:
        return report.currencies[ccy]
    months = month_range(report.first, report.last)
    return summarize_months(ccy, months, opening_mrr=0, opening_customers=0, aggregates={})


def _respond(
    obj: str,
    args: dict[str, Any],
    fields: Sequence[str],
    chart: Callable[[Sequence[MonthSummary], str], bytes] | None,
    *,
    with_trials: bool = False,
) -> Any:
    report = _report(args, with_trials=with_trials)
    fmt = args["format"]
    if fmt in charts.FORMATS and chart is not None:
        return _picture(chart(_chart_series(report, args["currency"]), fmt), fmt)
    document = _document(obj, report, fields, args["currency"])
    if fmt == "csv":
        return _report_csv(obj.replace(".", "_"), document, fields)
    return document


# `format=csv|svg|png` answers in those media types: say so in the OpenAPI document, so that
# clients (and the schemathesis run in tests/reliability) know every content type a 200 has
def _with_other_formats(component: str) -> Any:
    return also_answers(
        blp,
        component,
        {"text/csv": TEXT, "image/svg+xml": TEXT, "image/png": BINARY},
    )


@blp.route("/mrr")
class MrrReport(MethodView):
    @blp.arguments(MetricsArgs, location="query")
    @blp.response(200, ReportSchema)
    @_with_other_formats("Report")
    @blp.problems(*_PROBLEMS)
    @requires("metrics", "read")
    def get(self, args: dict[str, Any]) -> Any:
        """MRR at each month's start and end, ARR, customers and ARPA, per currency and in
        total; `format=svg|png` draws the MRR over time."""
        return _respond("metrics.mrr", args, MRR_FIELDS, charts.mrr_chart)


@blp.route("/movements")
class MovementsReport(MethodView):
    @blp.arguments(MetricsArgs, location="query")
    @blp.response(200, ReportSchema)
    @_with_other_formats("Report")
    @blp.problems(*_PROBLEMS)
    @requires("metrics", "read")
    def get(self, args: dict[str, Any]) -> Any:
        """Monthly movements: starting MRR + new + expansion + contraction + churn +
        reactivation = ending MRR; `format=svg|png` draws the waterfall."""
        return _respond("metrics.movements", args, MOVEMENT_FIELDS, charts.waterfall_chart)


@blp.route("/churn")
class ChurnReport(MethodView):
    @blp.arguments(TableArgs, location="query")
    @blp.response(200, ReportSchema)
    @_with_other_formats("Report")
    @blp.problems(*_PROBLEMS)
    @requires("metrics", "read")
    def get(self, args: dict[str, Any]) -> Any:
        """Logo churn, gross and net MRR churn, net revenue retention and trial conversion."""
        return _respond("metrics.churn", args, CHURN_FIELDS, None, with_trials=True)


def _cohort_document(args: dict[str, Any]) -> dict[str, Any]:
    tenant_id, livemode, tenant = _context()
    first, last = _range(args, ZoneInfo(tenant.timezone))
    table = queries.cohorts(session(), tenant_id, livemode, first, last)
    return {
        "object": "metrics.cohorts",
        "from_": str(first),
        "to": str(last),
        "timezone": tenant.timezone,
        "livemode": livemode,
        "cohorts": [
            {
                "currency": c.currency,
                "cohort": str(c.cohort),
                "customers": c.customers,
                "mrr": c.mrr,
                "cells": [
                    {
                        "month": str(cell.month),
                        "age": cell.age,
                        "customers": cell.customers,
                        "mrr": cell.mrr,
                        "customer_retention": _rate(cell.customer_retention),
                        "mrr_retention": _rate(cell.mrr_retention),
                    }
                    for cell in c.cells
                ],
                "_cohort": c,
            }
            for c in table
            if args["currency"] is None or c.currency == args["currency"]
        ],
    }


@blp.route("/cohorts")
class CohortsReport(MethodView):
    @blp.arguments(CohortArgs, location="query")
    @blp.response(200, CohortReportSchema)
    @_with_other_formats("CohortReport")
    @blp.problems(*_PROBLEMS)
    @requires("metrics", "read")
    def get(self, args: dict[str, Any]) -> Any:
        """Monthly cohorts (by the month of the customer's first MRR): customers and MRR
        retained at each month's end; `format=svg|png` draws the heat map."""
        document = _cohort_document(args)
        fmt = args["format"]
        if fmt in charts.FORMATS:
            data = charts.cohort_heatmap(
                [c["_cohort"] for c in document["cohorts"]], args["measure"], fmt
            )
            return _picture(data, fmt)
        if fmt == "csv":
            header = [
                "currency", "cohort", "cohort_customers", "cohort_mrr", "month", "age",
                "customers", "mrr", "customer_retention", "mrr_retention",
            ]  # fmt: skip
            rows = [
                [
                    c["currency"],
                    c["cohort"],
                    c["customers"],
                    decimal_string(c["mrr"], c["currency"]),
                    cell["month"],
                    cell["age"],
                    cell["customers"],
                    decimal_string(cell["mrr"], c["currency"]),
                    cell["customer_retention"] or "",
                    cell["mrr_retention"] or "",
                ]
                for c in document["cohorts"]
                for cell in c["cells"]
            ]
            return _csv("metrics_cohorts", header, rows)
        return document


@blp.route("/reconciliation")
class Reconciliation(MethodView):
    @blp.arguments(ReconciliationArgs, location="query")
    @blp.response(200, ReconciliationSchema)
    @_with_other_formats("Reconciliation")
    @blp.problems(*_PROBLEMS)
    @requires("metrics", "read")
    def get(self, args: dict[str, Any]) -> Any:
        """One line per difference, with its cause. Ledger vs. state: the ledger's MRR against
        the MRR recomputed from the subscriptions at each month end (and today). MRR vs.
        invoices: what the MRR implies is invoiced per customer and month against the
        finalized invoices and credit notes (docs/metrics.md)."""
        tenant_id, livemode, tenant = _context()
        first, last = _range(args, ZoneInfo(tenant.timezone))
        result = queries.reconcile(session(), tenant_id, livemode, first, last, check=args["check"])
        lines: list[dict[str, Any]] = [
            {
                "check": d.check.value,
                "month": str(d.month) if d.month is not None else None,
                "customer_id": d.customer_id,
                "currency": d.currency,
                "expected": d.expected,
                "actual": d.actual,
                "difference": d.difference,
                "cause": d.cause.value,
                "explained": d.explained,
                "detail": d.detail,
            }
            for d in result.differences
        ]
        if args["format"] == "csv":  # amounts as decimals, like every CSV of the metrics
            header = list(DifferenceSchema().fields)
            rows = [
                [
                    decimal_string(line[h], line["currency"])
                    if h in ("expected", "actual", "difference")
                    else line[h]
                    for h in header
                ]
                for line in lines
            ]
            return _csv("metrics_reconciliation", header, rows)
        return {
            "object": "metrics.reconciliation",
            "from_": str(first),
            "to": str(last),
            "livemode": livemode,
            "month_ends": result.month_ends,
            "customers": result.customers,
            "differences": len(result.differences),
            "unexplained": result.unexplained,
            "lines": lines,
        }
