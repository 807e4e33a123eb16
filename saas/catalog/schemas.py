from __future__ import annotations

from typing import Any

import marshmallow as ma

from saas.catalog.currencies import CURRENCIES
from saas.catalog.models import DEFAULT_TAX_KIND, INTERVALS, STATUSES, TRIAL_END_BEHAVIORS
from saas.kernel.text import printable

MAX_TRIAL_DAYS = 730
MAX_UNIT_AMOUNT = 10**12  # 10 billion in a 2-decimal currency: a typo guard, not a business rule
TAX_KIND = r"^[a-z][a-z0-9_]{0,63}$"


def validate_metadata(value: dict[str, Any]) -> None:
    """Same rules as customer metadata: at most 50 string keys of 1-40 characters, string values
    of at most 500 characters."""
    if len(value) > 50:
        raise ma.ValidationError("at most 50 keys")
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 40:
            raise ma.ValidationError("keys are strings of 1 to 40 characters")
        if not isinstance(v, str) or len(v) > 500:
            raise ma.ValidationError("values are strings of at most 500 characters")


# --- products -----------------------------------------------------------------------------


class ProductCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=[ma.validate.Length(min=1, max=200), printable])
    description = ma.fields.String(
        allow_none=True, validate=[ma.validate.Length(max=1000), printable]
    )
    metadata = ma.fields.Dict(validate=validate_metadata)


class ProductUpdateSchema(ma.Schema):
    name = ma.fields.String(validate=[ma.validate.Length(min=1, max=200), printable])
    description = ma.fields.String(
        allow_none=True, validate=[ma.validate.Length(max=1000), printable]
    )
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))
    metadata = ma.fields.Dict(validate=validate_metadata)


class ProductSchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("product")
    livemode = ma.fields.Boolean()
    name = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    metadata = ma.fields.Dict(attribute="metadata_")
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class ProductListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(ProductSchema))
    has_more = ma.fields.Boolean()


# --- plans --------------------------------------------------------------------------------


class _PlanFields(ma.Schema):
    name = ma.fields.String(validate=[ma.validate.Length(min=1, max=200), printable])
    description = ma.fields.String(
        allow_none=True, validate=[ma.validate.Length(max=1000), printable]
    )
    trial_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(0, MAX_TRIAL_DAYS))
    trial_end_behavior = ma.fields.String(
        validate=ma.validate.OneOf(TRIAL_END_BEHAVIORS),
        metadata={"description": "What a trial without a payment method becomes at its end."},
    )
    tax_kind = ma.fields.String(validate=ma.validate.Regexp(TAX_KIND, error="a snake_case kind"))
    metadata = ma.fields.Dict(validate=validate_metadata)


class PlanCreateSchema(_PlanFields):
    product_id = ma.fields.String(required=True, validate=ma.validate.Length(max=40))
    name = ma.fields.String(required=True, validate=[ma.validate.Length(min=1, max=200), printable])
    trial_days = ma.fields.Integer(
        strict=True, load_default=0, validate=ma.validate.Range(0, MAX_TRIAL_DAYS)
    )
    trial_end_behavior = ma.fields.String(
        load_default="cancel", validate=ma.validate.OneOf(TRIAL_END_BEHAVIORS)
    )
    tax_kind = ma.fields.String(
        load_default=DEFAULT_TAX_KIND,
        validate=ma.validate.Regexp(TAX_KIND, error="a snake_case kind"),
    )


class PlanUpdateSchema(_PlanFields):
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))


class PlanSchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("plan")
    livemode = ma.fields.Boolean()
    product_id = ma.fields.String()
    name = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    trial_days = ma.fields.Integer()
    trial_end_behavior = ma.fields.String()
    tax_kind = ma.fields.String()
    status = ma.fields.String()
    metadata = ma.fields.Dict(attribute="metadata_")
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class PlanListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(PlanSchema))
    has_more = ma.fields.Boolean()


# --- prices -------------------------------------------------------------------------------


def _validate_currency(value: str) -> None:
    if value not in CURRENCIES:
        raise ma.ValidationError(f"one of {', '.join(sorted(CURRENCIES))}")


class PriceCreateSchema(ma.Schema):
    plan_id = ma.fields.String(required=True, validate=ma.validate.Length(max=40))
    nickname = ma.fields.String(allow_none=True, validate=[ma.validate.Length(max=200), printable])
    currency = ma.fields.String(load_default="EUR", validate=_validate_currency)
    unit_amount = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(0, MAX_UNIT_AMOUNT),
        metadata={"description": "Integer minor units of the currency (cents for EUR)."},
    )
    interval = ma.fields.String(required=True, validate=ma.validate.OneOf(INTERVALS))
    per_seat = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Charged per unit of the subscription's quantity."},
    )
    metadata = ma.fields.Dict(validate=validate_metadata)


class PriceUpdateSchema(ma.Schema):
    """Currency, interval and per-seat never change; a new amount on a price with subscribers
    creates a new version (the response is that new price)."""

    nickname = ma.fields.String(allow_none=True, validate=[ma.validate.Length(max=200), printable])
    unit_amount = ma.fields.Integer(strict=True, validate=ma.validate.Range(0, MAX_UNIT_AMOUNT))
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))
    metadata = ma.fields.Dict(validate=validate_metadata)


class PriceSchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("price")
    livemode = ma.fields.Boolean()
    plan_id = ma.fields.String()
    lineage_id = ma.fields.String()
    version = ma.fields.Integer()
    previous_price_id = ma.fields.String(allow_none=True)
    nickname = ma.fields.String(allow_none=True)
    currency = ma.fields.String()
    unit_amount = ma.fields.Integer()
    interval = ma.fields.String(attribute="billing_interval")
    per_seat = ma.fields.Boolean()
    status = ma.fields.String()
    has_subscribers = ma.fields.Method("_has_subscribers")
    metadata = ma.fields.Dict(attribute="metadata_")
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    def _has_subscribers(self, obj: Any) -> bool:
        return obj.first_subscribed_at is not None


class PriceListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(PriceSchema))
    has_more = ma.fields.Boolean()
