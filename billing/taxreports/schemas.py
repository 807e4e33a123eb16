"""Query arguments and response documents of ``/v1/tax``.

Amounts are decimal strings in EUR with two places (the form tax returns use), except the
EC sales list's whole euros.
"""

from __future__ import annotations

import marshmallow as ma

QUARTER_PATTERN = r"^\d{4}-?[Qq][1-4]$"


class QuarterArgs(ma.Schema):
    quarter = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(QUARTER_PATTERN, error="must be a quarter, e.g. 2026Q3"),
        metadata={"description": "The calendar quarter, `2026Q3` (or `2026-Q3`)."},
    )
    format = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf(["json", "csv"]),
        metadata={"description": "json or csv (default: by the Accept header, else json)."},
    )


class CountersArgs(ma.Schema):
    year = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=2000, max=2100),
        metadata={"description": "Calendar year (default: this year in the tenant's zone)."},
    )


class ThresholdOut(ma.Schema):
    threshold = ma.fields.String(
        metadata={
            "description": "kleinunternehmer_current_year, kleinunternehmer_next_year, "
            "eu_b2c_services or eu_sme_union_turnover"
        }
    )
    limit = ma.fields.String()
    value = ma.fields.String()
    percent = ma.fields.String()
    status = ma.fields.String(metadata={"description": "ok, approaching or crossed"})
    legal_basis = ma.fields.String()
    warned = ma.fields.List(
        ma.fields.String(), metadata={"description": "Warning kinds already sent (webhooks)."}
    )


class CountersValuesOut(ma.Schema):
    turnover_previous_year = ma.fields.String(allow_none=True)
    turnover_current_year = ma.fields.String()
    forecast_current_year = ma.fields.String(allow_none=True)
    eu_b2c_previous_year = ma.fields.String()
    eu_b2c_current_year = ma.fields.String()
    union_turnover_previous_year = ma.fields.String()
    union_turnover_current_year = ma.fields.String()


class CountersOut(ma.Schema):
    object = ma.fields.String()
    year = ma.fields.Integer()
    livemode = ma.fields.Boolean()
    currency = ma.fields.String()
    counters = ma.fields.Nested(CountersValuesOut)
    thresholds = ma.fields.List(ma.fields.Nested(ThresholdOut))
    approaching = ma.fields.Boolean(metadata={"description": "Some threshold is approached."})
    crossed = ma.fields.Boolean(metadata={"description": "Some threshold is crossed."})


class OssLineOut(ma.Schema):
    rate_type = ma.fields.String()
    rate = ma.fields.String()
    net = ma.fields.String()
    vat = ma.fields.String()


class OssMemberStateOut(ma.Schema):
    member_state = ma.fields.String()
    lines = ma.fields.List(ma.fields.Nested(OssLineOut))
    net = ma.fields.String()
    vat = ma.fields.String()


class OssCorrectionOut(ma.Schema):
    period = ma.fields.String()
    member_state = ma.fields.String()
    net = ma.fields.String()
    vat = ma.fields.String()


class ExchangeRateOut(ma.Schema):
    currency = ma.fields.String()
    rate = ma.fields.String()
    published_on = ma.fields.String()
    period = ma.fields.String()


class OssReturnOut(ma.Schema):
    object = ma.fields.String()
    livemode = ma.fields.Boolean()
    quarter = ma.fields.String()
    due_date = ma.fields.String()
    currency = ma.fields.String()
    member_states = ma.fields.List(ma.fields.Nested(OssMemberStateOut))
    total_net = ma.fields.String()
    total_vat = ma.fields.String()
    corrections = ma.fields.List(ma.fields.Nested(OssCorrectionOut))
    total_vat_due = ma.fields.String()
    exchange_rates = ma.fields.List(ma.fields.Nested(ExchangeRateOut))


class EcSalesLineOut(ma.Schema):
    country_code = ma.fields.String()
    vat_number = ma.fields.String()
    amount = ma.fields.String(metadata={"description": "Whole EUR."})
    kind = ma.fields.String(metadata={"description": "S: other services (§ 18a UStG)."})


class EcSalesListOut(ma.Schema):
    object = ma.fields.String()
    livemode = ma.fields.Boolean()
    quarter = ma.fields.String()
    due_date = ma.fields.String()
    lines = ma.fields.List(ma.fields.Nested(EcSalesLineOut))
