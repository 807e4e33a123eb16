"""Providers for the packages that stored personal data before the registry existed.

These are adapters: each reads (and, when erasing, writes) one package's tables and registers
a `Provider`. The shell loads them (`saas.gdpr.runtime`); `compliance`'s core never imports
them, so the layering rule "compliance imports none of the packages that register" holds for
the core. They may move into their packages (`saas/customers/gdpr.py`, …) later.

`payments` registers the payments provider and the Stripe customer deleter.
"""

from __future__ import annotations

from compliance.registry import Registry
from compliance.registry import registry as default_registry


def load(target: Registry = default_registry) -> Registry:
    from compliance.providers import (
        audit,
        consents,
        customers,
        events,
        idempotency,
        invoices,
        mail_outbox,
        payments,
        portal,
        requests,
        sellers,
        staff,
        subscriptions,
    )

    modules = (
        customers,
        subscriptions,
        invoices,
        payments,
        events,
        idempotency,
        audit,
        requests,
        sellers,
        staff,
        consents,
        mail_outbox,
        portal,
    )
    for module in modules:
        module.register(target)
    return target
