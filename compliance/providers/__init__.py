"""Providers for the packages that stored personal data before the registry existed.

These are adapters: each reads (and, when erasing, writes) one package's tables and registers
a `Provider`. The shell loads them (`saas.gdpr.runtime`); `compliance`'s core never imports
them, so the layering rule "compliance imports none of the packages that register" holds for
the core. They may move into their packages (`saas/customers/gdpr.py`, …) later.

Gaps, on purpose: payments (the payments module registers its provider and a payment
customer deleter, `compliance.providers.payments`, when its tables exist) and consents (no
table yet).
"""

from __future__ import annotations

from compliance.registry import Registry
from compliance.registry import registry as default_registry


def load(target: Registry = default_registry) -> Registry:
    from compliance.providers import (
        audit,
        customers,
        events,
        idempotency,
        invoices,
        requests,
        sellers,
        subscriptions,
    )

    modules = (customers, subscriptions, invoices, events, idempotency, audit, requests, sellers)
    for module in modules:
        module.register(target)
    return target
