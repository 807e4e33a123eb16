"""Consent input and output."""

from __future__ import annotations

import ipaddress
from typing import Any

import marshmallow as ma

_PURPOSE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


def _ip(value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise ma.ValidationError("an IPv4 or IPv6 address") from exc


class ConsentIn(ma.Schema):
    purpose = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(_PURPOSE, error="lowercase letters, digits, _ . - (max 64)"),
        metadata={
            "description": "What the consent is for, e.g. `newsletter`.",
            "example": "newsletter",
        },
    )
    granted = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "`true` records a consent given now; `false` withdraws the active "
            "consent for the purpose (Art. 7(3) GDPR)."
        },
    )
    source = ma.fields.String(
        load_default="api",
        validate=ma.validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$", error="a short lowercase token"),
        metadata={
            "description": "Where it was given or withdrawn: `api`, `portal`, `signup_form`, …"
        },
    )
    text_version = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(min=1, max=64),
        metadata={"description": "Version of the consent wording the customer saw."},
    )
    ip_address = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=_ip,
        metadata={"description": "The customer's address when they consented (proof, optional)."},
    )


class ConsentOut(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("consent")
    livemode = ma.fields.Boolean()
    customer_id = ma.fields.String()
    purpose = ma.fields.String()
    granted = ma.fields.Method("_granted")
    text_version = ma.fields.String(allow_none=True)
    source = ma.fields.String()
    ip_address = ma.fields.String(allow_none=True)
    given_at = ma.fields.DateTime()
    withdrawn_at = ma.fields.DateTime(allow_none=True)
    withdrawal_source = ma.fields.String(allow_none=True)

    def _granted(self, obj: Any) -> bool:
        return obj.withdrawn_at is None


class ConsentListOut(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(ConsentOut))
    has_more = ma.fields.Boolean()
