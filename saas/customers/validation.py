"""Syntax checks for customer input: country, VAT ID (python-stdnum), locale."""

from __future__ import annotations

import re

from stdnum import get_cc_module
from stdnum.exceptions import ValidationError as StdnumError

from saas.kernel.countries import EU_MEMBER_STATES

LOCALE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")


def normalise_vat_id(raw: str, country: str) -> str:
    """Return the compact VAT ID or raise ValueError with a message for the customer.

    EU numbers are checked with their checksum; Greece's prefix is `EL` in VIES, not `GR`.
    Numbers of countries stdnum does not know are kept as given (upper-cased, compacted).
    """
    compact = re.sub(r"[\s.\-]", "", raw).upper()
    if compact.startswith("GR"):
        compact = "EL" + compact[2:]
    prefix_cc = "GR" if compact[:2] == "EL" else compact[:2]
    if prefix_cc in EU_MEMBER_STATES or country in EU_MEMBER_STATES:
        eu_vat = get_cc_module("eu", "vat")
        assert eu_vat is not None  # part of python-stdnum
        try:
            valid = eu_vat.validate(compact)
        except StdnumError as exc:
            raise ValueError(f"not a valid EU VAT ID: {exc}") from exc
        result = str(valid).upper()
        return "EL" + result[2:] if result.startswith("GR") else result
    module = get_cc_module(country.lower(), "vat")
    if module is not None:
        try:
            return str(module.compact(module.validate(raw)))
        except StdnumError as exc:
            raise ValueError(f"not a valid {country} VAT number: {exc}") from exc
    return compact
