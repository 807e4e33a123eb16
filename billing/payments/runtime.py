"""What the payment services need from the running process: the secret box that opens the
tenants' Stripe keys, and where Stripe is (``api.stripe.com`` unless configured otherwise;
the tests point it at localstripe).

The shell configures it once per app (:func:`configure`, called when the payments blueprint
is registered), so that use cases keep their plain signatures (``collect_invoice(session,
invoice_id, *, now)``) and can be called from a request, a worker task or a dunning retry
alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from billing.payments.errors import StripeNotConfiguredError
from billing.payments.gateway import StripeGateway
from billing.payments.models import PaymentSettings
from saas.kernel.secretbox import SecretBox


@dataclass(frozen=True)
class Runtime:
    box: SecretBox | None = None
    stripe_api_base: str | None = None


_runtime = Runtime()


def configure(*, box: SecretBox, stripe_api_base: str | None) -> None:
    global _runtime  # noqa: PLW0603  (one configuration per process, set by the shell)
    _runtime = Runtime(box=box, stripe_api_base=stripe_api_base)


@contextmanager
def overridden(*, stripe_api_base: str | None) -> Iterator[None]:
    """Point the Stripe gateways elsewhere for a block (tests: a localstripe process)."""
    global _runtime  # noqa: PLW0603
    before = _runtime
    _runtime = replace(_runtime, stripe_api_base=stripe_api_base)
    try:
        yield
    finally:
        _runtime = before


def box() -> SecretBox:
    if _runtime.box is None:
        raise RuntimeError("billing.payments.runtime is not configured (app not created)")
    return _runtime.box


def stripe_gateway(settings: PaymentSettings | None) -> StripeGateway:
    if settings is None or not settings.stripe_secret_key_encrypted:
        raise StripeNotConfiguredError("set a Stripe secret key: PUT /v1/payment-settings")
    secret = box().decrypt(settings.stripe_secret_key_encrypted)
    return StripeGateway(secret, api_base=_runtime.stripe_api_base)
