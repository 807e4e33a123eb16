"""Seller profile input and output. ``PUT`` replaces the whole profile: fields not sent get
their defaults, so a client that sends back what it read changes nothing.

Checks at the door (python-stdnum): USt-IdNr. (syntax, checksum, prefix of the seller's
country), Steuernummer (German formats), IBAN (checksum), BIC; the logo must be PNG or JPEG
of at most 128 KiB (it is copied into every invoice snapshot); number patterns must parse
(:mod:`billing.numbering`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.de import stnr
from stdnum.exceptions import ValidationError as StdnumError

from billing.numbering import PatternError, parse_pattern
from billing.sellers.models import (
    DEFAULT_ACCENT_COLOR,
    DEFAULT_CREDIT_NOTE_PATTERN,
    DEFAULT_INVOICE_PATTERN,
    FOUNDING_YEAR_CROSSINGS,
    LANGUAGES,
    MAX_LOGO_BYTES,
)
from saas.catalog.currencies import CURRENCIES
from saas.kernel.countries import EU_MEMBER_STATES
from saas.kernel.text import printable
from tax.errors import TaxError
from tax.territories import vat_code
from tax.vatid import validate_vat_id

MAX_COUNTER = 10**13  # 100 billion EUR in cents: a typo guard
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_EU_SME_ID = re.compile(r"[A-Z]{2}[0-9A-Z]{2,14}EX")
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


class Base64Bytes(ma.fields.Field[bytes]):
    """Bytes as standard base64 in JSON."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return base64.b64encode(value).decode("ascii")

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bytes:
        if not isinstance(value, str):
            raise ma.ValidationError("base64 text expected")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ma.ValidationError("not valid base64") from exc


def _validate_logo(value: bytes | None) -> None:
    if value is None:
        return
    if len(value) > MAX_LOGO_BYTES:
        raise ma.ValidationError(f"at most {MAX_LOGO_BYTES // 1024} KiB")
    if not value.startswith((_PNG, _JPEG)):
        raise ma.ValidationError("a PNG or JPEG image")


def _validate_pattern(value: str) -> None:
    try:
        parse_pattern(value)
    except PatternError as exc:
        raise ma.ValidationError(str(exc)) from exc


def _validate_currencies(value: list[str]) -> None:
    if not value:
        raise ma.ValidationError("at least one currency")
    unknown = [c for c in value if c not in CURRENCIES]
    if unknown:
        raise ma.ValidationError(f"unsupported: {', '.join(unknown)}")
    if len(set(value)) != len(value):
        raise ma.ValidationError("each currency once")


_COUNTER = ma.validate.Range(min=0, max=MAX_COUNTER)


class AddressIn(ma.Schema):
    line1 = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=1, max=200), printable]
    )
    line2 = ma.fields.String(
        load_default=None, allow_none=True, validate=[ma.validate.Length(max=200), printable]
    )
    postal_code = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=1, max=20), printable]
    )
    city = ma.fields.String(required=True, validate=[ma.validate.Length(min=1, max=100), printable])
    country = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(sorted(EU_MEMBER_STATES), error="an EU member state"),
    )


class ContactIn(ma.Schema):
    name = ma.fields.String(required=True, validate=[ma.validate.Length(min=1, max=200), printable])
    phone = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=50))
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=320))


class BankIn(ma.Schema):
    iban = ma.fields.String(required=True, validate=ma.validate.Length(max=50))
    bic = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=20))
    account_holder = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))

    @ma.post_load
    def _compact(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        try:
            data["iban"] = stdnum_iban.validate(data["iban"])
        except StdnumError as exc:
            raise ma.ValidationError(f"not a valid IBAN: {exc}", field_name="iban") from exc
        if data.get("bic"):
            try:
                data["bic"] = stdnum_bic.validate(data["bic"])
            except StdnumError as exc:
                raise ma.ValidationError(f"not a valid BIC: {exc}", field_name="bic") from exc
        return data


class CountersIn(ma.Schema):
    """Running totals in EUR cents before the next supply (``tax.model.Counters``)."""

    turnover_previous_year = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=_COUNTER
    )
    turnover_current_year = ma.fields.Integer(load_default=0, strict=True, validate=_COUNTER)
    forecast_current_year = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=_COUNTER
    )
    eu_b2c_previous_year = ma.fields.Integer(load_default=0, strict=True, validate=_COUNTER)
    eu_b2c_current_year = ma.fields.Integer(load_default=0, strict=True, validate=_COUNTER)
    union_turnover_previous_year = ma.fields.Integer(load_default=0, strict=True, validate=_COUNTER)
    union_turnover_current_year = ma.fields.Integer(load_default=0, strict=True, validate=_COUNTER)


class TaxPolicyIn(ma.Schema):
    """``tax.model.TaxPolicy``: choices where the law is unsettled (docs/tax.md)."""

    founding_year_crossing = ma.fields.String(
        load_default="from_crossing_supply", validate=ma.validate.OneOf(FOUNDING_YEAR_CROSSINGS)
    )
    exempt_at_exact_limit = ma.fields.Boolean(load_default=True)
    kleinunternehmer_reverse_charge_wording = ma.fields.Boolean(load_default=True)


class NumberingIn(ma.Schema):
    invoice_pattern = ma.fields.String(
        load_default=DEFAULT_INVOICE_PATTERN, validate=_validate_pattern
    )
    credit_note_pattern = ma.fields.String(
        load_default=DEFAULT_CREDIT_NOTE_PATTERN, validate=_validate_pattern
    )
    credit_notes_share_invoice_series = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Number credit notes in the invoice series (and pattern)."},
    )


def _nested_default(schema: type[ma.Schema]) -> Any:
    return lambda: schema().load({})


class SellerProfileIn(ma.Schema):
    legal_name = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=1, max=200), printable]
    )
    address = ma.fields.Nested(AddressIn, required=True)
    tax_number = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(max=32),
        metadata={"description": "Steuernummer; § 14 Abs. 4 Nr. 2 UStG needs it or vat_id."},
    )
    vat_id = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=32)
    )
    legal_registration_id = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(max=200),
        metadata={"description": "Handelsregister entry, e.g. HRB 123456 B, AG Charlottenburg"},
    )
    contact = ma.fields.Nested(ContactIn, load_default=None, allow_none=True)
    kleinunternehmer = ma.fields.Boolean(load_default=False)
    oss_registered = ma.fields.Boolean(load_default=False)
    destination_option = ma.fields.Boolean(load_default=False)
    destination_option_since = ma.fields.Date(load_default=None, allow_none=True)
    founded_on = ma.fields.Date(load_default=None, allow_none=True)
    established_in_one_member_state = ma.fields.Boolean(load_default=True)
    eu_sme_countries = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(sorted(EU_MEMBER_STATES))), load_default=list
    )
    eu_sme_id = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=32)
    )
    counters = ma.fields.Nested(CountersIn, load_default=_nested_default(CountersIn))
    tax_policy = ma.fields.Nested(TaxPolicyIn, load_default=_nested_default(TaxPolicyIn))
    bank = ma.fields.Nested(BankIn, load_default=None, allow_none=True)
    invoice_language = ma.fields.String(load_default="de", validate=ma.validate.OneOf(LANGUAGES))
    logo = Base64Bytes(
        load_default=None,
        allow_none=True,
        validate=_validate_logo,
        metadata={"description": "PNG or JPEG, base64, at most 128 KiB."},
    )
    accent_color = ma.fields.String(
        load_default=DEFAULT_ACCENT_COLOR,
        validate=ma.validate.Regexp(_HEX_COLOUR, error="a CSS colour #rrggbb"),
    )
    payment_terms_days = ma.fields.Integer(
        load_default=14, strict=True, validate=ma.validate.Range(min=0, max=365)
    )
    numbering = ma.fields.Nested(NumberingIn, load_default=_nested_default(NumberingIn))
    accepted_currencies = ma.fields.List(
        ma.fields.String(), load_default=lambda: ["EUR"], validate=_validate_currencies
    )

    @ma.validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        country = data["address"]["country"]
        if not (data.get("tax_number") or "").strip() and not data.get("vat_id"):
            message = "a Steuernummer or a USt-IdNr. (§ 14 Abs. 4 Nr. 2 UStG)"
            errors["tax_number"] = [message]
            errors["vat_id"] = [message]
        if data.get("vat_id"):
            try:
                data["vat_id"] = validate_vat_id(data["vat_id"])
            except TaxError as exc:
                errors["vat_id"] = [str(exc)]
            else:
                if data["vat_id"][:2] != vat_code(country):
                    errors["vat_id"] = [f"a VAT ID of {country}"]
        tax_number = (data.get("tax_number") or "").strip() or None
        data["tax_number"] = tax_number
        if tax_number and country == "DE" and not stnr.is_valid(tax_number):
            errors["tax_number"] = ["not a valid German Steuernummer"]
        if data["kleinunternehmer"] and country != "DE":
            errors["kleinunternehmer"] = ["§ 19 UStG applies to sellers established in Germany"]
        if country in data["eu_sme_countries"]:
            errors["eu_sme_countries"] = ["the EU SME scheme is for other member states"]
        if data["eu_sme_countries"] and not data.get("eu_sme_id"):
            errors["eu_sme_id"] = ["the EX number of the EU SME scheme (§ 19a UStG)"]
        if data.get("eu_sme_id") and not _EU_SME_ID.fullmatch(data["eu_sme_id"]):
            errors["eu_sme_id"] = ["an EX number such as DE123456789EX"]
        if data["destination_option"] and data.get("destination_option_since") is None:
            errors["destination_option_since"] = ["the day the option was exercised"]
        if errors:
            raise ma.ValidationError(errors)


class SellerProfileOut(ma.Schema):
    object = ma.fields.Constant("seller_profile")
    livemode = ma.fields.Boolean()
    legal_name = ma.fields.String()
    address = ma.fields.Method("_address")
    tax_number = ma.fields.String(allow_none=True)
    vat_id = ma.fields.String(allow_none=True)
    legal_registration_id = ma.fields.String(allow_none=True)
    contact = ma.fields.Method("_contact", allow_none=True)
    kleinunternehmer = ma.fields.Boolean()
    oss_registered = ma.fields.Boolean()
    destination_option = ma.fields.Boolean()
    destination_option_since = ma.fields.Date(allow_none=True)
    founded_on = ma.fields.Date(allow_none=True)
    established_in_one_member_state = ma.fields.Boolean()
    eu_sme_countries = ma.fields.List(ma.fields.String())
    eu_sme_id = ma.fields.String(allow_none=True)
    counters = ma.fields.Method("_counters")
    tax_policy = ma.fields.Method("_tax_policy")
    bank = ma.fields.Method("_bank", allow_none=True)
    invoice_language = ma.fields.String()
    logo = Base64Bytes(allow_none=True)
    accent_color = ma.fields.String()
    payment_terms_days = ma.fields.Integer()
    numbering = ma.fields.Method("_numbering")
    accepted_currencies = ma.fields.List(ma.fields.String())
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    def _address(self, obj: Any) -> dict[str, Any]:
        return {
            "line1": obj.address_line1,
            "line2": obj.address_line2,
            "postal_code": obj.postal_code,
            "city": obj.city,
            "country": obj.country,
        }

    def _contact(self, obj: Any) -> dict[str, Any] | None:
        if obj.contact_name is None:
            return None
        return {"name": obj.contact_name, "phone": obj.contact_phone, "email": obj.contact_email}

    def _counters(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in CountersIn().fields}

    def _tax_policy(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in TaxPolicyIn().fields}

    def _bank(self, obj: Any) -> dict[str, Any] | None:
        if obj.bank_iban is None:
            return None
        return {
            "iban": obj.bank_iban,
            "bic": obj.bank_bic,
            "account_holder": obj.bank_account_holder,
        }

    def _numbering(self, obj: Any) -> dict[str, Any]:
        return {
            "invoice_pattern": obj.invoice_number_pattern,
            "credit_note_pattern": obj.credit_note_number_pattern,
            "credit_notes_share_invoice_series": obj.credit_notes_share_invoice_series,
        }
