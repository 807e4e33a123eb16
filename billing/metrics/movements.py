"""MRR movements of customers, event by event. Pure: no database, no Flask, no clock.

Definitions (docs/metrics.md is the reference; this module follows it to the letter):

- A subscription's MRR at an instant is its recurring net price × quantity normalised to a
  month, in integer minor units, 0 while trialing, paused, canceled or incomplete
  (`saas.subscriptions.mrr`). A customer's MRR is the sum over their subscriptions, **per
  currency**: a customer paying in two currencies has two independent MRR series, because a
  movement must be exact in the currency it is reported in.
- Movements are recorded per customer and currency, in time order. All changes of one
  customer at the same instant are merged first (a plan switch done as cancel + create is one
  change; a renewal and the scheduled change applied at its boundary are one change). With
  the customer's MRR before (b) and after (a) the merged change:

  | b     | a           | kind                                                      | amount |
  |-------|-------------|-----------------------------------------------------------|--------|
  | 0     | > 0         | `new` if the customer never had MRR before, else `reactivation` | +a |
  | > 0   | 0           | `churn`                                                   | −b     |
  | > 0   | > b         | `expansion`                                               | a − b  |
  | > 0   | 0 < a < b   | `contraction`                                             | a − b  |
  | a = b |             | no movement (renewals, trial starts, net-zero switches)   |        |

  Every amount is therefore a − b, and a customer's movements sum to their MRR.

Two inputs lead to the same movements:
- *levels*, as the analysts' event file gives them: "subscription s has MRR m from instant t
  on" (`SubscriptionChange`); turned into deltas per subscription (`deltas_from_levels`);
- *deltas*, as `subscription_history` rows carry them (`mrr_after − mrr_before`), which is
  also what the set-based SQL of `billing.metrics.sql` sums.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Kind(StrEnum):
    NEW = "new"
    EXPANSION = "expansion"
    CONTRACTION = "contraction"
    CHURN = "churn"
    REACTIVATION = "reactivation"


# The order reports list the kinds in (the order of the monthly identity).
KINDS: tuple[Kind, ...] = (
    Kind.NEW,
    Kind.EXPANSION,
    Kind.CONTRACTION,
    Kind.CHURN,
    Kind.REACTIVATION,
)
# Kinds that make a customer count (b = 0 → a > 0) or stop counting (b > 0 → a = 0).
ACTIVATING = frozenset({Kind.NEW, Kind.REACTIVATION})


class NegativeMrrError(ValueError):
    """A customer's MRR went below zero: the input contradicts itself (a history row whose
    `mrr_before` is not the previous row's `mrr_after`, or a negative level)."""


def classify(before: int, after: int, *, had_mrr: bool) -> Kind | None:
    """The kind of a customer's change from `before` to `after` (minor units per month);
    `had_mrr` says whether the customer had MRR > 0 at any earlier instant. None: no
    movement (a = b)."""
    if before < 0 or after < 0:
        raise NegativeMrrError(f"MRR cannot be negative (before {before}, after {after})")
    if after == before:
        return None
    if before == 0:
        return Kind.REACTIVATION if had_mrr else Kind.NEW
    if after == 0:
        return Kind.CHURN
    return Kind.EXPANSION if after > before else Kind.CONTRACTION


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    """Subscription `subscription_id` of `customer_id` has MRR `mrr` (minor units of
    `currency` per month) from `at` on."""

    customer_id: str
    subscription_id: str
    at: datetime
    mrr: int
    currency: str


@dataclass(frozen=True, slots=True)
class Delta:
    """One subscription's MRR changed by `delta` at `at` (a history row: after − before).
    `source_id` names where it came from (a history row id); the greatest source id of a
    merged change names the movement."""

    customer_id: str
    currency: str
    at: datetime
    delta: int
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class Movement:
    """A change of one customer's MRR in one currency at one instant, classified."""

    customer_id: str
    currency: str
    at: datetime
    kind: Kind
    amount: int  # a − b: negative for churn and contraction
    mrr_before: int
    mrr_after: int
    source_id: str = ""


def deltas_from_levels(changes: Iterable[SubscriptionChange]) -> list[Delta]:
    """Per subscription, in time order, each level's difference from the previous one (the
    first from 0). Changes of one subscription at the same instant keep their input order: the
    last one is the level from that instant on."""
    by_subscription: dict[str, list[tuple[int, SubscriptionChange]]] = defaultdict(list)
    for order, change in enumerate(changes):
        if change.mrr < 0:
            raise NegativeMrrError(f"subscription {change.subscription_id} has MRR {change.mrr}")
        by_subscription[change.subscription_id].append((order, change))
    deltas: list[Delta] = []
    for subscription_id, rows in by_subscription.items():
        rows.sort(key=lambda item: (item[1].at, item[0]))
        first = rows[0][1]
        previous = 0
        for _, change in rows:
            if (change.customer_id, change.currency) != (first.customer_id, first.currency):
                raise ValueError(f"subscription {subscription_id} changes its customer or currency")
            if change.mrr != previous:
                deltas.append(
                    Delta(change.customer_id, change.currency, change.at, change.mrr - previous)
                )
            previous = change.mrr
    return deltas


def movements_from_deltas(deltas: Iterable[Delta]) -> list[Movement]:
    """The customers' movements: merged per customer, currency and instant, in time order
    (sorted by customer, currency, instant)."""
    merged: dict[tuple[str, str], dict[datetime, list[Delta]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for delta in deltas:
        merged[(delta.customer_id, delta.currency)][delta.at].append(delta)
    movements: list[Movement] = []
    for (customer_id, currency), instants in sorted(merged.items()):
        mrr = 0
        had_mrr = False
        for at in sorted(instants):
            parts = instants[at]
            after = mrr + sum(part.delta for part in parts)
            kind = classify(mrr, after, had_mrr=had_mrr)
            if kind is not None:
                movements.append(
                    Movement(
                        customer_id=customer_id,
                        currency=currency,
                        at=at,
                        kind=kind,
                        amount=after - mrr,
                        mrr_before=mrr,
                        mrr_after=after,
                        source_id=max(part.source_id for part in parts),
                    )
                )
            mrr = after
            had_mrr = had_mrr or after > 0
    return movements


def movements_from_levels(changes: Iterable[SubscriptionChange]) -> list[Movement]:
    """Movements from subscription MRR levels (the event file's form)."""
    return movements_from_deltas(deltas_from_levels(changes))
