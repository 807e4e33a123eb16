"""Query arguments and response documents of `/v1/metrics`.

Amounts in JSON are integer minor units per month (like every amount of the API); rates are
decimal fractions as strings with 4 places, null when their denominator is 0. CSV carries
decimal amounts (see `saas.metrics.api`).
"""

from __future__ import annotations

import marshmallow as ma

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
MAX_MONTHS = 120


class MetricsArgs(ma.Schema):
    from_ = ma.fields.String(
        data_key="from",
        load_default=None,
        validate=ma.validate.Regexp(MONTH_PATTERN, error="must be a month, YYYY-MM"),
        metadata={"description": "First month (YYYY-MM); default 11 months before `to`."},
    )
    to = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(MONTH_PATTERN, error="must be a month, YYYY-MM"),
        metadata={"description": "Last month, included (YYYY-MM); default this month."},
    )
    currency = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(r"^[A-Z]{3}$", error="must be an ISO 4217 code"),
        metadata={
            "description": "Only this currency (no total). Pictures: the currency drawn "
            "(default the reporting currency)."
        },
    )
    format = ma.fields.String(
        load_default="json",
        validate=ma.validate.OneOf(["json", "csv", "svg", "png"]),
        metadata={"description": "json, csv, or a picture: svg or png."},
    )


class TableArgs(MetricsArgs):
    """Reports without a picture."""

    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(["json", "csv"]))


class ReconciliationArgs(TableArgs):
    check = ma.fields.String(
        load_default="both",
        validate=ma.validate.OneOf(["both", "ledger_vs_state", "mrr_vs_invoices"]),
        metadata={
            "description": "Which reconciliation: the ledger against the subscriptions' "
            "state, the MRR against finalized invoices and credit notes, or both."
        },
    )


class CohortArgs(MetricsArgs):
    measure = ma.fields.String(
        load_default="customers",
        validate=ma.validate.OneOf(["customers", "mrr"]),
        metadata={"description": "What the heat map colours: customer or MRR retention."},
    )


class RateSchema(ma.Schema):
    currency = ma.fields.String()
    rate = ma.fields.String(metadata={"description": "Units of `currency` per 1 EUR."})
    published_on = ma.fields.Date()
    provisional = ma.fields.Boolean(
        metadata={"description": "The month ends after the last rate in the offline data."}
    )


class MonthLineSchema(ma.Schema):
    """One month of one series; each report fills the fields it is about."""

    month = ma.fields.String()
    starting_mrr = ma.fields.Integer()
    new = ma.fields.Integer()
    expansion = ma.fields.Integer()
    contraction = ma.fields.Integer()
    churn = ma.fields.Integer()
    reactivation = ma.fields.Integer()
    ending_mrr = ma.fields.Integer()
    net_new_mrr = ma.fields.Integer()
    arr = ma.fields.Integer()
    arpa = ma.fields.Integer(allow_none=True)
    customers_start = ma.fields.Integer()
    customers_end = ma.fields.Integer()
    new_customers = ma.fields.Integer()
    reactivated_customers = ma.fields.Integer()
    churned_customers = ma.fields.Integer()
    logo_churn_rate = ma.fields.String(allow_none=True)
    gross_mrr_churn_rate = ma.fields.String(allow_none=True)
    net_mrr_churn_rate = ma.fields.String(allow_none=True)
    net_revenue_retention = ma.fields.String(allow_none=True)
    trials_ended = ma.fields.Integer()
    trials_converted = ma.fields.Integer()
    trial_conversion_rate = ma.fields.String(allow_none=True)
    rates = ma.fields.List(ma.fields.Nested(RateSchema))
    currency_effect = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "Total only: starting MRR − the previous month's ending."},
    )


class SeriesSchema(ma.Schema):
    currency = ma.fields.String()
    months = ma.fields.List(ma.fields.Nested(MonthLineSchema))


class TotalSchema(SeriesSchema):
    conversion = ma.fields.String()
    missing_rates = ma.fields.List(ma.fields.String())


class ReportSchema(ma.Schema):
    object = ma.fields.String()
    from_ = ma.fields.String(data_key="from")
    to = ma.fields.String()
    timezone = ma.fields.String()
    livemode = ma.fields.Boolean()
    reporting_currency = ma.fields.String()
    currencies = ma.fields.List(ma.fields.Nested(SeriesSchema))
    total = ma.fields.Nested(TotalSchema, allow_none=True)


class CohortCellSchema(ma.Schema):
    month = ma.fields.String()
    age = ma.fields.Integer()
    customers = ma.fields.Integer()
    mrr = ma.fields.Integer()
    customer_retention = ma.fields.String(allow_none=True)
    mrr_retention = ma.fields.String(allow_none=True)


class CohortSchema(ma.Schema):
    currency = ma.fields.String()
    cohort = ma.fields.String()
    customers = ma.fields.Integer()
    mrr = ma.fields.Integer()
    cells = ma.fields.List(ma.fields.Nested(CohortCellSchema))


class CohortReportSchema(ma.Schema):
    object = ma.fields.String()
    from_ = ma.fields.String(data_key="from")
    to = ma.fields.String()
    timezone = ma.fields.String()
    livemode = ma.fields.Boolean()
    cohorts = ma.fields.List(ma.fields.Nested(CohortSchema))


class DifferenceSchema(ma.Schema):
    check = ma.fields.String()
    month = ma.fields.String(allow_none=True)
    customer_id = ma.fields.String()
    currency = ma.fields.String()
    expected = ma.fields.Integer()
    actual = ma.fields.Integer()
    difference = ma.fields.Integer()
    cause = ma.fields.String()
    explained = ma.fields.Boolean()
    detail = ma.fields.String()


class ReconciliationSchema(ma.Schema):
    object = ma.fields.String()
    from_ = ma.fields.String(data_key="from")
    to = ma.fields.String()
    livemode = ma.fields.Boolean()
    month_ends = ma.fields.Integer()
    customers = ma.fields.Integer()
    differences = ma.fields.Integer()
    unexplained = ma.fields.Integer()
    lines = ma.fields.List(ma.fields.Nested(DifferenceSchema))
