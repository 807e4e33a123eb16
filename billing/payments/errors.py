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


class PaymentNotFoundError(DomainError):
    code = "payment_not_found"
    kind = ErrorKind.NOT_FOUND
    title = "No such payment"


class InvoiceNotPayableError(DomainError):
    """A draft (no number, nothing owed yet) or a void invoice (cancelled) takes no money."""

    code = "invoice_not_payable"
    kind = ErrorKind.CONFLICT
    title = "The invoice cannot take a payment"


class PaymentCurrencyMismatchError(DomainError):
    code = "payment_currency_mismatch"
    kind = ErrorKind.INVALID
    title = "The payment's currency is not the invoice's"


class PaymentReferenceConflictError(DomainError):
    """The same bank reference was recorded before with other facts: not a harmless retry."""

    code = "payment_reference_conflict"
    kind = ErrorKind.CONFLICT
    title = "This payment reference was recorded with different details"


class StripeNotConfiguredError(DomainError):
    code = "stripe_not_configured"
    kind = ErrorKind.CONFLICT
    title = "The tenant has no Stripe account configured"


class StripeKeyInvalidError(DomainError):
    code = "stripe_key_invalid"
    kind = ErrorKind.INVALID
    title = "Not a Stripe secret key for this mode"


class PaymentMethodMissingError(DomainError):
    code = "payment_method_missing"
    kind = ErrorKind.CONFLICT
    title = "The customer has no payment method set up"


class PaymentMethodDeclinedError(DomainError):
    code = "payment_method_declined"
    kind = ErrorKind.INVALID
    title = "The card was declined when it was set up"


class CollectionInProgressError(DomainError):
    code = "collection_in_progress"
    kind = ErrorKind.CONFLICT
    title = "A payment for this invoice is pending or has succeeded"


class StripeTenantUnknownError(DomainError):
    code = "stripe_webhook_unknown_tenant"
    kind = ErrorKind.NOT_FOUND
    title = "No Stripe webhook is configured at this address"


class SetupIntentNotFoundError(DomainError):
    """Unknown to Stripe, or set up for another customer: a return URL can carry any id."""

    code = "setup_intent_not_found"
    kind = ErrorKind.NOT_FOUND
    title = "No such card set-up for this customer"
