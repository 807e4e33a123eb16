"""Text a document can print: what XML 1.0 allows (tab, line breaks, no other control
characters, no lone surrogates, no U+FFFE/U+FFFF).

Names, addresses, VAT IDs and line descriptions end up in the e-invoice's XML and in
PostgreSQL text (which cannot hold NUL). Finalization checks the whole snapshot
(``billing.documents.rules``); refusing such text where it enters spares the seller an
invoice that cannot be finalized later.
"""

from __future__ import annotations

import re

import marshmallow as ma

_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def printable(value: object) -> None:
    """A marshmallow validator: refuse text an XML document cannot carry."""
    if isinstance(value, str) and _NOT_XML_CHAR.search(value):
        raise ma.ValidationError("must not contain control characters")
