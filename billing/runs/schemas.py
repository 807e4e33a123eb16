"""Marshmallow schemas of ``/v1/billing-runs``."""

from __future__ import annotations

import marshmallow as ma

from billing.runs.models import STATUSES
from saas.kernel.pagination import ListArgs


class BillingRunOut(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("billing_run")
    group_id = ma.fields.String(
        metadata={"description": "Runs started together for several tenants share it."}
    )
    status = ma.fields.String(metadata={"description": "running, succeeded or failed"})
    trigger = ma.fields.String(metadata={"description": "cli, worker, test_clock or api"})
    test_clock_id = ma.fields.String(allow_none=True)
    at = ma.fields.DateTime(metadata={"description": "Billed up to this instant."})
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    subscriptions_advanced = ma.fields.Integer()
    invoices_finalized = ma.fields.Integer()
    skipped = ma.fields.Integer()
    failed = ma.fields.Integer()
    batches_done = ma.fields.Integer()
    batches_total = ma.fields.Integer(metadata={"description": "An estimate made at the start."})
    last_error = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class BillingRunListOut(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(BillingRunOut))
    has_more = ma.fields.Boolean()


class BillingRunListArgs(ListArgs):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))
