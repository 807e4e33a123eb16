# mypy: disable-error-code="untyped-decorator, misc"
# (flask-smorest ships no type hints: its decorators and Blueprint base are Any)
"""``/v1/tax`` (scope ``tax``): the tax counters with their thresholds (the dashboard's
flag), the OSS return and the EC sales list of a quarter, as JSON or CSV
(``?format=csv`` or ``Accept: text/csv``). Every report reads the credential's mode."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import request
from flask.views import MethodView

from billing.sellers.services import require_seller_profile
from billing.taxcounters.rules import Status
from billing.taxcounters.services import counters_report, threshold_json
from billing.taxreports import services
from billing.taxreports.schemas import (
    CountersArgs,
    CountersOut,
    EcSalesListOut,
    OssReturnOut,
    QuarterArgs,
)
from saas.auth.middleware import current_principal, requires
from saas.extensions import session
from saas.http.api import Blueprint
from saas.http.formats import TEXT, also_answers, csv_download
from saas.kernel.clock import utcnow
from saas.tenants.models import Tenant
from tax.oss import Quarter

blp = Blueprint(
    "tax",
    __name__,
    url_prefix="/v1/tax",
    description="Tax counters and thresholds, OSS return and EC sales list",
)

_PROBLEMS = (400, 401, 403, 409, 422, 429, 503)
_CENT = Decimal("0.01")


def _livemode() -> bool:
    return bool(current_principal().livemode)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(_CENT))


def _wants_csv(args: dict[str, Any]) -> bool:
    if args.get("format") is not None:
        return bool(args["format"] == "csv")
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv"


def _with_csv(component: str) -> Any:
    return also_answers(blp, component, {"text/csv": TEXT})


def _quarter(args: dict[str, Any]) -> Quarter:
    return services.parse_quarter(args["quarter"])  # the schema checked the pattern


@blp.route("/counters")
class Counters(MethodView):
    @blp.arguments(CountersArgs, location="query")
    @blp.response(200, CountersOut)
    @blp.problems(*_PROBLEMS)
    @requires("tax", "read")
    def get(self, args: dict[str, Any]) -> Any:
        """The year's tax counters (EUR) and every threshold that applies: its limit, the
        counter, and `ok`, `approaching` or `crossed`, with the warnings already sent."""
        db = session()
        livemode = _livemode()
        year = args["year"]
        if year is None:
            tenant = db.get(Tenant, current_principal().tenant_id)
            zone = ZoneInfo(tenant.timezone if tenant is not None else "Europe/Berlin")
            year = utcnow().astimezone(zone).year
        profile = require_seller_profile(db, livemode=livemode)
        report = counters_report(db, profile, livemode=livemode, year=year)
        c = report.counters
        thresholds = []
        for state in report.thresholds:
            item = threshold_json(state)
            item["warned"] = sorted(k for t, k in report.warned if t == state.key.value)
            thresholds.append(item)
        return {
            "object": "tax.counters",
            "year": year,
            "livemode": livemode,
            "currency": "EUR",
            "counters": {
                "turnover_previous_year": _money(c.turnover_previous_year),
                "turnover_current_year": _money(c.turnover_current_year),
                "forecast_current_year": _money(c.forecast_current_year),
                "eu_b2c_previous_year": _money(c.eu_b2c_previous_year),
                "eu_b2c_current_year": _money(c.eu_b2c_current_year),
                "union_turnover_previous_year": _money(c.union_turnover_previous_year),
                "union_turnover_current_year": _money(c.union_turnover_current_year),
            },
            "thresholds": thresholds,
            "approaching": any(s.status is Status.APPROACHING for s in report.thresholds),
            "crossed": any(s.status is Status.CROSSED for s in report.thresholds),
        }


@blp.route("/oss-return")
class OssReturnReport(MethodView):
    @blp.arguments(QuarterArgs, location="query")
    @blp.response(200, OssReturnOut)
    @_with_csv("OssReturnOut")
    @blp.problems(*_PROBLEMS)
    @requires("tax", "read")
    def get(self, args: dict[str, Any]) -> Any:
        """The OSS return (Union scheme, § 18j UStG) of a quarter from the finalized
        invoices and credit notes; CSV is the BZSt upload file (`#v2.0`)."""
        livemode = _livemode()
        quarter = _quarter(args)
        report = services.oss_return(session(), livemode=livemode, quarter=quarter)
        if _wants_csv(args):
            # more than 6,000 data lines make several files: served one after the other
            return csv_download("".join(report.to_csv()), f"oss-return-{quarter}")
        return {"object": "tax.oss_return", "livemode": livemode, **report.to_json()}


@blp.route("/ec-sales-list")
class EcSalesListReport(MethodView):
    @blp.arguments(QuarterArgs, location="query")
    @blp.response(200, EcSalesListOut)
    @_with_csv("EcSalesListOut")
    @blp.problems(*_PROBLEMS)
    @requires("tax", "read")
    def get(self, args: dict[str, Any]) -> Any:
        """The EC sales list (Zusammenfassende Meldung, § 18a UStG) of a quarter: per
        customer VAT ID the reverse-charge services in whole EUR."""
        livemode = _livemode()
        quarter = _quarter(args)
        report = services.ec_sales_list(session(), livemode=livemode, quarter=quarter)
        if _wants_csv(args):
            return csv_download(services.ec_sales_csv(report), f"ec-sales-list-{quarter}")
        return {"object": "tax.ec_sales_list", "livemode": livemode, **report.to_json()}
