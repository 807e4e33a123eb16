"""A localstripe process for the payment tests, and the payment gateways pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from billing.payments import runtime
from tests.support.localstripe import running_localstripe


@pytest.fixture(scope="module")
def stripe_base() -> Iterator[str]:
    with running_localstripe() as base:
        yield base


@pytest.fixture
def stripe_api(stripe_base: str) -> Iterator[Any]:
    """The `stripe` client as the customer's browser and Stripe's dashboard would use it; the
    app's gateways talk to the same localstripe meanwhile."""
    with runtime.overridden(stripe_api_base=stripe_base):
        yield stripe.StripeClient("sk_test_abowerk", base_addresses={"api": stripe_base}).v1
