"""Syntax checks for customer input: country, VAT ID (python-stdnum), locale."""

from __future__ import annotations

import re

from stdnum import get_cc_module
from stdnum.exceptions import ValidationError as StdnumError

from saas.kernel.countries import EU_MEMBER_STATES
from tax import vatid
from tax.errors import TaxError

LOCALE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")


def normalise_vat_id(raw: str, country: str) -> str:
    """Return the compact VAT ID or raise ValueError with a message for the customer.

    EU numbers (and any number for an EU customer) go through the tax engine's check: syntax
    and checksum, Greece as `EL` as VIES wants it. Numbers of other countries are checked with
    python-stdnum where it knows the country, and otherwise kept as given (compacted).
    """
    compact = vatid.normalise_vat_id(raw)
    prefix_cc = "GR" if compact[:2] == "EL" else compact[:2]
    if prefix_cc in EU_MEMBER_STATES or country in EU_MEMBER_STATES:
        try:
            return vatid.validate_vat_id(raw)
        except TaxError as exc:
            raise ValueError(str(exc)) from exc
    module = get_cc_module(country.lower(), "vat")
    if module is not None:
        try:
            return str(module.compact(module.validate(raw)))
        except StdnumError as exc:
            raise ValueError(f"not a valid {country} VAT number: {exc}") from exc
    return compact
