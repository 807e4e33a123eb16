from __future__ import annotations

from typing import Any

import marshmallow as ma

from saas.customers.validation import LOCALE, normalise_vat_id
from saas.kernel.countries import ISO_3166_ALPHA2, is_country
from saas.kernel.fastdump import FastDump
from saas.kernel.text import printable


def _validate_country(value: str) -> None:
    if not is_country(value):
        raise ma.ValidationError("not an ISO 3166-1 alpha-2 country code")


def _validate_metadata(value: dict[str, Any]) -> None:
    if len(value) > 50:
        raise ma.ValidationError("at most 50 keys")
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 40:
            raise ma.ValidationError("keys are strings of 1 to 40 characters")
        if not isinstance(v, str) or len(v) > 500:
            raise ma.ValidationError("values are strings of at most 500 characters")


class AddressSchema(ma.Schema):
    line1 = ma.fields.String(load_default=None, validate=[ma.validate.Length(max=200), printable])
    line2 = ma.fields.String(load_default=None, validate=[ma.validate.Length(max=200), printable])
    postal_code = ma.fields.String(
        load_default=None, validate=[ma.validate.Length(max=20), printable]
    )
    city = ma.fields.String(load_default=None, validate=[ma.validate.Length(max=100), printable])
    state = ma.fields.String(load_default=None, validate=[ma.validate.Length(max=100), printable])
    # the enum documents what `_validate_country` accepts (clients and the API fuzz see it)
    country = ma.fields.String(
        required=True,
        validate=_validate_country,
        metadata={"enum": sorted(ISO_3166_ALPHA2), "description": "ISO 3166-1 alpha-2 code."},
    )


class VatIdCheckSchema(ma.Schema):
    status = ma.fields.String(
        required=True, validate=ma.validate.OneOf(("valid", "invalid", "unavailable"))
    )
    checked_at = ma.fields.AwareDateTime(required=True)


class _CustomerFields(ma.Schema):
    email = ma.fields.Email(validate=ma.validate.Length(max=320))
    name = ma.fields.String(validate=[ma.validate.Length(min=1, max=200), printable])
    address = ma.fields.Nested(AddressSchema)
    is_business = ma.fields.Boolean()
    vat_id = ma.fields.String(allow_none=True, validate=[ma.validate.Length(max=32), printable])
    vat_id_check = ma.fields.Nested(
        VatIdCheckSchema,
        allow_none=True,
        metadata={"description": "Result of your VIES check of vat_id (null: unchecked)."},
    )
    locale = ma.fields.String(validate=ma.validate.Regexp(LOCALE, error="like de-DE or en"))
    external_ref = ma.fields.String(
        allow_none=True, validate=[ma.validate.Length(max=200), printable]
    )
    metadata = ma.fields.Dict(validate=_validate_metadata)

    def _check_vat_id(self, data: dict[str, Any], country: str | None) -> None:
        if data.get("vat_id"):
            try:
                data["vat_id"] = normalise_vat_id(data["vat_id"], country or "")
            except ValueError as exc:
                raise ma.ValidationError(str(exc), field_name="vat_id") from exc


class CustomerCreateSchema(_CustomerFields):
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=320))
    name = ma.fields.String(required=True, validate=[ma.validate.Length(min=1, max=200), printable])
    address = ma.fields.Nested(AddressSchema, required=True)
    test_clock_id = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=40),
        metadata={"description": "Test mode: put the customer on this test clock."},
    )

    @ma.validates_schema
    def _vat_id(self, data: dict[str, Any], **_: Any) -> None:
        self._check_vat_id(data, data["address"]["country"])


class CustomerUpdateSchema(_CustomerFields):
    """Partial update: only the fields sent change; the VAT ID is checked against the new or
    the stored country by the service, which knows the stored one."""


class CustomerSchema(FastDump):
    id = ma.fields.String()
    object = ma.fields.Constant("customer")
    livemode = ma.fields.Boolean()
    email = ma.fields.String()
    name = ma.fields.String()
    address = ma.fields.Method("_address")
    is_business = ma.fields.Boolean()
    vat_id = ma.fields.String(allow_none=True)
    vat_id_check = ma.fields.Method("_vat_id_check", allow_none=True)
    locale = ma.fields.String()
    external_ref = ma.fields.String(allow_none=True)
    metadata = ma.fields.Dict(attribute="metadata_")
    test_clock_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    def _vat_id_check(self, obj: Any) -> dict[str, Any] | None:
        if obj.vat_id_status is None:
            return None
        return {"status": obj.vat_id_status, "checked_at": obj.vat_id_checked_at.isoformat()}

    def _address(self, obj: Any) -> dict[str, Any]:
        return {
            "line1": obj.address_line1,
            "line2": obj.address_line2,
            "postal_code": obj.postal_code,
            "city": obj.city,
            "state": obj.state,
            "country": obj.country,
        }


class CustomerListSchema(FastDump):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(CustomerSchema))
    has_more = ma.fields.Boolean()
