from __future__ import annotations

from typing import Any

import marshmallow as ma

from saas.catalog.schemas import MAX_TRIAL_DAYS, validate_metadata
from saas.kernel.fastdump import FastDump
from saas.subscriptions.services import PRORATION_MODES

MAX_QUANTITY = 1_000_000

_QUANTITY_RANGE = ma.validate.Range(min=1, max=MAX_QUANTITY)


class SubscriptionCreateSchema(ma.Schema):
    customer_id = ma.fields.String(required=True, validate=ma.validate.Length(max=40))
    price_id = ma.fields.String(required=True, validate=ma.validate.Length(max=40))
    quantity = ma.fields.Integer(load_default=1, strict=True, validate=_QUANTITY_RANGE)
    trial_days = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=ma.validate.Range(0, MAX_TRIAL_DAYS),
        metadata={"description": "Override the plan's trial length; 0 for no trial."},
    )
    has_payment_method = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Whether the customer has a payment method on file."},
    )
    metadata = ma.fields.Dict(validate=validate_metadata)


class SubscriptionChangeSchema(ma.Schema):
    price_id = ma.fields.String(validate=ma.validate.Length(max=40))
    quantity = ma.fields.Integer(strict=True, validate=_QUANTITY_RANGE)
    proration = ma.fields.String(
        load_default="immediate",
        validate=ma.validate.OneOf(PRORATION_MODES),
        metadata={"description": "`immediate` (prorated to the day) or at `period_end`."},
    )

    @ma.validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if "price_id" not in data and "quantity" not in data:
            raise ma.ValidationError("send price_id and/or quantity", field_name="price_id")


class SubscriptionCancelSchema(ma.Schema):
    at_period_end = ma.fields.Boolean(
        load_default=False, metadata={"description": "End at the period (or trial) end."}
    )
    prorate = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Cancelling now: credit the unused days of the paid period."},
    )

    @ma.validates_schema
    def _one_way(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("at_period_end") and data.get("prorate"):
            raise ma.ValidationError("only when cancelling now", field_name="prorate")


class EmptySchema(ma.Schema):
    """Actions without parameters take an empty JSON object (or no body)."""


class PaymentMethodSchema(ma.Schema):
    has_payment_method = ma.fields.Boolean(required=True)


class ScheduledChangeSchema(ma.Schema):
    price_id = ma.fields.String(attribute="scheduled_price_id", allow_none=True)
    quantity = ma.fields.Integer(attribute="scheduled_quantity", allow_none=True)


class SubscriptionSchema(FastDump):
    id = ma.fields.String()
    object = ma.fields.Constant("subscription")
    livemode = ma.fields.Boolean()
    customer_id = ma.fields.String()
    price_id = ma.fields.String()
    quantity = ma.fields.Integer()
    currency = ma.fields.String()
    status = ma.fields.String()
    has_payment_method = ma.fields.Boolean()
    test_clock_id = ma.fields.String(allow_none=True)
    billing_anchor_on = ma.fields.Date(allow_none=True)
    started_at = ma.fields.DateTime()
    trial_start_at = ma.fields.DateTime(allow_none=True)
    trial_end_at = ma.fields.DateTime(allow_none=True)
    current_period_start_at = ma.fields.DateTime(allow_none=True)
    current_period_end_at = ma.fields.DateTime(allow_none=True)
    cancel_at_period_end = ma.fields.Boolean()
    canceled_at = ma.fields.DateTime(allow_none=True)
    ended_at = ma.fields.DateTime(allow_none=True)
    paused_at = ma.fields.DateTime(allow_none=True)
    scheduled_change = ma.fields.Method("_scheduled", allow_none=True)
    metadata = ma.fields.Dict(attribute="metadata_")
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    def _scheduled(self, obj: Any) -> dict[str, Any] | None:
        if obj.scheduled_price_id is None and obj.scheduled_quantity is None:
            return None
        return {"price_id": obj.scheduled_price_id, "quantity": obj.scheduled_quantity}


class SubscriptionListSchema(FastDump):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(SubscriptionSchema))
    has_more = ma.fields.Boolean()


class ProrationLineSchema(ma.Schema):
    kind = ma.fields.String()
    price_id = ma.fields.String()
    quantity = ma.fields.Integer()
    unit_amount = ma.fields.Integer()
    amount = ma.fields.Integer(metadata={"description": "Signed minor units: credits < 0."})
    starts_on = ma.fields.Date()
    ends_on = ma.fields.Date(metadata={"description": "Exclusive."})
    period_days = ma.fields.Integer()
    description = ma.fields.String()


class ChangePreviewSchema(ma.Schema):
    object = ma.fields.Constant("subscription_change_preview")
    subscription_id = ma.fields.String()
    proration = ma.fields.String()
    currency = ma.fields.String()
    effective_at = ma.fields.DateTime()
    old_price_id = ma.fields.String()
    new_price_id = ma.fields.String()
    old_quantity = ma.fields.Integer()
    new_quantity = ma.fields.Integer()
    lines = ma.fields.List(ma.fields.Nested(ProrationLineSchema))
    total = ma.fields.Integer()


class HistorySchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("subscription_history")
    subscription_id = ma.fields.String()
    customer_id = ma.fields.String()
    seq = ma.fields.Integer()
    event = ma.fields.String()
    occurred_at = ma.fields.DateTime()
    recorded_at = ma.fields.DateTime()
    actor = ma.fields.String()
    old_status = ma.fields.String(allow_none=True)
    new_status = ma.fields.String()
    old_price_id = ma.fields.String(allow_none=True)
    new_price_id = ma.fields.String()
    old_quantity = ma.fields.Integer(allow_none=True)
    new_quantity = ma.fields.Integer()
    currency = ma.fields.String()
    mrr_before = ma.fields.Integer(metadata={"description": "Minor units per month."})
    mrr_after = ma.fields.Integer(metadata={"description": "Minor units per month."})
    detail = ma.fields.Dict()


class HistoryListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(HistorySchema))
    has_more = ma.fields.Boolean()


class ChargeSchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("subscription_charge")
    livemode = ma.fields.Boolean()
    subscription_id = ma.fields.String()
    customer_id = ma.fields.String()
    period_id = ma.fields.String(allow_none=True)
    kind = ma.fields.String()
    reason = ma.fields.String()
    description = ma.fields.String()
    price_id = ma.fields.String()
    quantity = ma.fields.Integer()
    unit_amount = ma.fields.Integer()
    amount = ma.fields.Integer()
    currency = ma.fields.String()
    starts_on = ma.fields.Date()
    ends_on = ma.fields.Date()
    period_days = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    invoiced_at = ma.fields.DateTime(allow_none=True)


class ChargeListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(ChargeSchema))
    has_more = ma.fields.Boolean()
