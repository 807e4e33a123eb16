"""The analysts' event file: JSON lines, one subscription change each. Pure.

    {"customer_id": "c1", "subscription_id": "s1", "at": "2025-01-15T10:00:00Z",
     "mrr": "49.00", "currency": "EUR"}

`mrr` is that subscription's MRR from `at` on (a decimal string, or a JSON number read as a
decimal, never as a float), with at most the currency's places. `at` is ISO 8601 with a UTC
offset. Lines need not be sorted; two lines of one subscription at the same instant keep
file order (the later one wins). Extra keys are ignored; blank lines are skipped. A
subscription must keep its customer and currency.

Every bad line is reported with its number (`EventFileError.errors`), and nothing is
returned from a file with any bad line: a partly read file would give plausible, wrong
numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.metrics.money import parse_amount
from billing.metrics.movements import SubscriptionChange

REQUIRED = ("customer_id", "subscription_id", "at", "mrr", "currency")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_REPORTED = 100


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class EventFileError(ValueError):
    def __init__(self, errors: list[LineError]) -> None:
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:MAX_REPORTED])
        more = len(errors) - MAX_REPORTED
        super().__init__(shown + (f"\n… and {more} more bad lines" if more > 0 else ""))


def _text(raw: dict[str, object], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string")
    return value.strip()


def _instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"at {text!r} is not an ISO 8601 instant") from None
    if at.tzinfo is None:
        raise ValueError(f"at {text!r} has no UTC offset (write 2025-01-15T10:00:00Z)")
    return at


def parse_line(text: str) -> SubscriptionChange:
    """One line; `ValueError` with a message naming the problem."""
    try:
        raw = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(raw, dict):
        raise ValueError("must be a JSON object")
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    currency = _text(raw, "currency")
    if not _CURRENCY.match(currency):
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code such as EUR")
    try:
        mrr = parse_amount(raw["mrr"], currency)
    except ValueError as exc:
        raise ValueError(f"mrr: {exc}") from None
    return SubscriptionChange(
        customer_id=_text(raw, "customer_id"),
        subscription_id=_text(raw, "subscription_id"),
        at=_instant(_text(raw, "at")),
        mrr=mrr,
        currency=currency,
    )


def read_events(lines: Iterable[str]) -> list[SubscriptionChange]:
    """All changes of the file, or `EventFileError` listing every bad line."""
    changes: list[SubscriptionChange] = []
    errors: list[LineError] = []
    owner: dict[str, tuple[str, str, int]] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            change = parse_line(text)
        except ValueError as exc:
            errors.append(LineError(number, str(exc)))
            continue
        first = owner.setdefault(
            change.subscription_id, (change.customer_id, change.currency, number)
        )
        if (change.customer_id, change.currency) != first[:2]:
            errors.append(
                LineError(
                    number,
                    f"subscription {change.subscription_id} belongs to customer {first[0]} "
                    f"in {first[1]} (line {first[2]})",
                )
            )
            continue
        changes.append(change)
    if errors:
        raise EventFileError(errors)
    return changes
