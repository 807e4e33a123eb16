from __future__ import annotations

from saas.kernel.errors import DomainError, ErrorKind


class PaymentProviderUnavailableError(DomainError):
    code = "payment_provider_unavailable"
    kind = ErrorKind.UNAVAILABLE
    title = "The payment provider is not reachable"


class PaymentProviderConfigError(DomainError):
    code = "payment_provider_misconfigured"
    kind = ErrorKind.CONFLICT
    title = "The payment provider refused the tenant's credentials"


class InvalidStripeSignatureError(DomainError):
    code = "invalid_stripe_signature"
    kind = ErrorKind.INVALID
    title = "The Stripe webhook signature is missing, wrong or stale"
