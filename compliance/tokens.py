"""Replacement values for erased personal data, and scrubbing of free text. Pure.

Erased values are replaced with random tokens (`secrets.token_hex`), never with hashes of the
original: a hash of an e-mail address can be recomputed from a guess and so still identifies
the person (the EDPB's view of pseudonymised data). Tokens keep NOT NULL and format
constraints intact (`erased-…@invalid.example` is a syntactically valid address in a domain
reserved by RFC 2606, so nothing is ever sent to it).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
ERASED_DOMAIN = "invalid.example"
MIN_IDENTIFIER_LENGTH = 3  # shorter values ("DE", "1") would scrub unrelated text


def erased_email() -> str:
    return f"erased-{secrets.token_hex(8)}@{ERASED_DOMAIN}"


def erased_text() -> str:
    return f"erased-{secrets.token_hex(8)}"


def is_erased_email(value: str) -> bool:
    return value.startswith("erased-") and value.endswith("@" + ERASED_DOMAIN)


def _pattern(identifiers: Iterable[str]) -> re.Pattern[str] | None:
    values = sorted(
        {v.strip() for v in identifiers if v and len(v.strip()) >= MIN_IDENTIFIER_LENGTH},
        key=len,
        reverse=True,  # longest first: "Hauptstr. 1a" before "Hauptstr. 1"
    )
    if not values:
        return None
    return re.compile("|".join(re.escape(v) for v in values), re.IGNORECASE)


def scrub(text: str | None, identifiers: Iterable[str]) -> str | None:
    """`text` with every occurrence of an identifier replaced by `[redacted]`."""
    if text is None:
        return None
    pattern = _pattern(identifiers)
    return pattern.sub(REDACTED, text) if pattern else text


def scrub_json(
    value: Any, identifiers: Iterable[str], *, redact_keys: frozenset[str] = frozenset()
) -> Any:
    """A copy of a JSON value: identifiers scrubbed from every string, and the values under
    `redact_keys` (at any depth) replaced by `[redacted]` (objects and lists by an empty one)."""
    pattern = _pattern(identifiers)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, item in node.items():
                if key in redact_keys:
                    out[key] = _emptied(item)
                else:
                    out[key] = walk(item)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, str) and pattern is not None:
            return pattern.sub(REDACTED, node)
        return node

    return walk(value)


def _emptied(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    if isinstance(value, bool | int | float):
        return value
    return REDACTED


def contains_any(text: str | None, identifiers: Iterable[str]) -> bool:
    if not text:
        return False
    pattern = _pattern(identifiers)
    return bool(pattern and pattern.search(text))
