"""Deadlines and states of data subject requests. Pure.

Deadline (Art. 12(3) GDPR): the controller answers "without undue delay and in any event within
one month of receipt of the request"; it may extend that "by two further months where
necessary, taking into account the complexity and number of the requests", and must tell the
data subject so, with the reasons, within the first month.

Months are counted as Regulation (EEC, Euratom) No 1182/71 says (the CJEU and the EDPB apply
it to the GDPR): the day of receipt does not count, and the period ends with the expiry of the
last hour of the day in the last month that has the same date as the day of receipt, or of
the month's last day when there is no such date (received 31 January → ends with 28/29
February). Days are the tenant's local days. We do not move the end past a weekend or public
holiday (Art. 3(4) of the regulation would allow it): an earlier deadline is the safe side.

States: `received` → `identity_pending` (the tenant asked the person to prove who they are)
→ `in_progress` (identity verified: by a portal session of the customer, or attested by the
tenant through the API) → `completed` or `rejected` (Art. 12(5), 12(6): manifestly unfounded
or excessive, or identity not verifiable). `received` may go straight to `in_progress`.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from compliance.errors import (
    ExtensionTooLateError,
    ExtensionTooLongError,
    InvalidRequestTransitionError,
)

FIRST_PERIOD_MONTHS = 1
MAX_EXTENSION_MONTHS = 2


class RequestKind(StrEnum):
    ACCESS = "access"  # Art. 15
    PORTABILITY = "portability"  # Art. 20
    ERASURE = "erasure"  # Art. 17
    RESTRICTION = "restriction"  # Art. 18


class RequestState(StrEnum):
    RECEIVED = "received"
    IDENTITY_PENDING = "identity_pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"


class RequestAction(StrEnum):
    REQUEST_IDENTITY = "request_identity"
    VERIFY_IDENTITY = "verify_identity"
    FULFIL = "fulfil"
    REJECT = "reject"
    EXTEND = "extend"


class VerificationMethod(StrEnum):
    PORTAL_SESSION = "portal_session"  # the customer signed in to the customer portal
    TENANT_ATTESTATION = "tenant_attestation"  # the tenant checked and says so, via the API


S = RequestState
A = RequestAction
OPEN_STATES = frozenset({S.RECEIVED, S.IDENTITY_PENDING, S.IN_PROGRESS})

TRANSITIONS: dict[tuple[RequestState, RequestAction], RequestState] = {
    (S.RECEIVED, A.REQUEST_IDENTITY): S.IDENTITY_PENDING,
    (S.RECEIVED, A.VERIFY_IDENTITY): S.IN_PROGRESS,
    (S.IDENTITY_PENDING, A.VERIFY_IDENTITY): S.IN_PROGRESS,
    (S.IN_PROGRESS, A.FULFIL): S.COMPLETED,
    **{(state, A.REJECT): S.REJECTED for state in OPEN_STATES},
    **{(state, A.EXTEND): state for state in OPEN_STATES},
}


def next_state(state: RequestState | str, action: RequestAction) -> RequestState:
    try:
        return TRANSITIONS[(RequestState(state), action)]
    except KeyError:
        raise InvalidRequestTransitionError(
            f"a request in state {state} cannot {action.value.replace('_', ' ')}"
        ) from None


def add_months(day: date, months: int) -> date:
    """The same date `months` later, or that month's last day when it has no such date."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_at(received_at: datetime, zone: ZoneInfo, months: int) -> datetime:
    """The instant the answer becomes late: local midnight after the period's last day."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    last_day = add_months(received_at.astimezone(zone).date(), months)
    return datetime.combine(last_day + timedelta(days=1), time(0), zone).astimezone(UTC)


def extended_due_at(
    received_at: datetime,
    zone: ZoneInfo,
    *,
    extended_so_far: int,
    months: int,
    now: datetime,
) -> datetime:
    """The new deadline after extending by `months`; refuses more than two months in total
    and extensions asked for after the first month has passed."""
    if months < 1 or extended_so_far + months > MAX_EXTENSION_MONTHS:
        raise ExtensionTooLongError(
            f"extended by {extended_so_far} month(s) already; at most "
            f"{MAX_EXTENSION_MONTHS} in total",
            errors={"months": [f"at most {MAX_EXTENSION_MONTHS - extended_so_far} more"]},
        )
    if now >= due_at(received_at, zone, FIRST_PERIOD_MONTHS):
        raise ExtensionTooLateError(
            "the first month after receipt has passed: an extension must be told within it"
        )
    return due_at(received_at, zone, FIRST_PERIOD_MONTHS + extended_so_far + months)


def is_due_soon(due: datetime, now: datetime, *, within: timedelta) -> bool:
    return now < due <= now + within


def is_overdue(due: datetime, now: datetime) -> bool:
    return now >= due
