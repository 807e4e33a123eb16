"""The erasure's payment-provider hook, wired to a Stripe-like gateway.

Payments (the table that says which Stripe customer belongs to which abowerk customer, and
which Stripe account a tenant uses) do not exist yet. When they do, the payments module
registers its deleter with

    registry.register_payment_customer_deleter(
        "stripe", stripe_customer_deleter(gateway_for=..., customer_ids=...)
    )

`gateway_for(session, subject)` returns the tenant's gateway (`billing.payments.gateway.
StripeGateway` fits) or None when the tenant has no Stripe account; `customer_ids(session,
subject)` the person's Stripe customer ids. Each is deleted (`DELETE /v1/customers/{id}`;
Stripe then also detaches their payment methods); a customer Stripe no longer knows counts as
deleted. An unreachable Stripe raises the gateway's `unavailable` error, which the erasure
records as `failed` and `abowerk gdpr reapply-erasures` retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session

from compliance.registry import PaymentCustomerDeleter, PaymentCustomerDeletion, Subject

PROVIDER = "stripe"


class CustomerDeletingGateway(Protocol):
    def delete_customer(self, customer_id: str) -> bool: ...


def stripe_customer_deleter(
    *,
    gateway_for: Callable[[Session, Subject], CustomerDeletingGateway | None],
    customer_ids: Callable[[Session, Subject], list[str]],
) -> PaymentCustomerDeleter:
    def delete(session: Session, subject: Subject) -> list[PaymentCustomerDeletion]:
        ids = customer_ids(session, subject)
        gateway = gateway_for(session, subject) if ids else None
        if gateway is None:
            return [PaymentCustomerDeletion(PROVIDER, "no_customer")]
        results = []
        for stripe_id in ids:
            deleted = gateway.delete_customer(stripe_id)
            results.append(
                PaymentCustomerDeletion(
                    PROVIDER,
                    "deleted" if deleted else "failed",
                    reference=stripe_id,
                    error=None if deleted else "not_deleted",
                )
            )
        return results

    return delete
