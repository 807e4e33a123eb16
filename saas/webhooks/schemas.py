from __future__ import annotations

import marshmallow as ma


class EndpointCreateSchema(ma.Schema):
    url = ma.fields.String(required=True, validate=ma.validate.Length(min=8, max=2000))
    enabled_events = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=80)),
        required=True,
        validate=ma.validate.Length(min=1, max=50),
        metadata={"description": "Event types or families such as `customer.*`; `*` for all."},
    )
    description = ma.fields.String(load_default=None, validate=ma.validate.Length(max=500))


class EndpointUpdateSchema(ma.Schema):
    url = ma.fields.String(validate=ma.validate.Length(min=8, max=2000))
    enabled_events = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=80)),
        validate=ma.validate.Length(min=1, max=50),
    )
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=500))
    status = ma.fields.String(validate=ma.validate.OneOf(["enabled", "disabled"]))


class EndpointSchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("webhook_endpoint")
    livemode = ma.fields.Boolean()
    url = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    enabled_events = ma.fields.List(ma.fields.String())
    status = ma.fields.String()
    disabled_reason = ma.fields.String(allow_none=True)
    failing_since = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class EndpointWithSecretSchema(EndpointSchema):
    secret = ma.fields.String(
        metadata={"description": "The signing secret (whsec_…). Shown only here, once."}
    )


class EndpointListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(EndpointSchema))
    has_more = ma.fields.Boolean()


class AttemptSchema(ma.Schema):
    id = ma.fields.String()
    attempted_at = ma.fields.DateTime()
    response_status = ma.fields.Integer(allow_none=True)
    response_body = ma.fields.String(allow_none=True)
    error = ma.fields.String(allow_none=True)
    duration_ms = ma.fields.Integer()


class DeliverySummarySchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("webhook_delivery")
    event_id = ma.fields.String()
    endpoint_id = ma.fields.String()
    status = ma.fields.String()
    attempts = ma.fields.Integer()
    next_attempt_at = ma.fields.DateTime(allow_none=True)
    last_attempt_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class DeliverySchema(DeliverySummarySchema):
    attempt_log = ma.fields.List(ma.fields.Nested(AttemptSchema))


class DeliveryListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(DeliverySummarySchema))
    has_more = ma.fields.Boolean()


class EventSchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("event")
    type = ma.fields.String()
    livemode = ma.fields.Boolean()
    data = ma.fields.Dict()
    created_at = ma.fields.DateTime()


class EventListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(EventSchema))
    has_more = ma.fields.Boolean()
