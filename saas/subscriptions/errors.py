"""Subscription errors. Codes are public API: never rename one."""

from __future__ import annotations

from saas.kernel.errors import ConflictError, NotFoundError, ValidationFailedError


class SubscriptionNotFoundError(NotFoundError):
    code = "subscription_not_found"


class InvalidTransitionError(ConflictError):
    """The lifecycle table has no such (state, event) pair."""

    code = "invalid_subscription_transition"
    title = "The subscription's state does not allow this"


class SubscriptionConflictError(ConflictError):
    """Another change to the same subscription committed first (optimistic lock lost)."""

    code = "subscription_conflict"
    title = "The subscription was changed concurrently"


class NotScheduledToCancelError(ConflictError):
    code = "subscription_not_scheduled_to_cancel"
    title = "No cancellation is scheduled"


class CancellationScheduledError(ConflictError):
    code = "subscription_cancellation_scheduled"
    title = "A cancellation is already scheduled"


class CurrencyMismatchError(ValidationFailedError):
    code = "price_currency_mismatch"
    title = "The price's currency differs from the subscription's"


class QuantityNotAllowedError(ValidationFailedError):
    code = "quantity_requires_per_seat_price"
    title = "Only a per-seat price takes a quantity other than 1"


class EmptyChangeError(ValidationFailedError):
    code = "subscription_change_empty"
    title = "The change names the subscription's current price and quantity"
