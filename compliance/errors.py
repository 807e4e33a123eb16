"""Compliance errors. Codes are public API: never rename one."""

from __future__ import annotations

from saas.kernel.errors import ConflictError, NotFoundError, ValidationFailedError


class GdprRequestNotFoundError(NotFoundError):
    code = "gdpr_request_not_found"


class SubjectNotFoundError(NotFoundError):
    """The data subject is not a customer of this tenant (or of this mode)."""

    code = "customer_not_found"


class RestrictionNotFoundError(NotFoundError):
    code = "gdpr_restriction_not_found"


class InvalidRequestTransitionError(ConflictError):
    code = "invalid_gdpr_request_transition"
    title = "The request's state does not allow this"


class SubjectAlreadyErasedError(ConflictError):
    code = "customer_already_erased"
    title = "The customer has been erased already"


class ExtensionTooLongError(ValidationFailedError):
    """Art. 12(3) GDPR: at most two further months beyond the first."""

    code = "gdpr_extension_too_long"
    title = "The deadline can be extended by at most two further months"


class ExtensionTooLateError(ConflictError):
    """Art. 12(3) GDPR: the extension must be told within one month of receipt."""

    code = "gdpr_extension_too_late"
    title = "The deadline can only be extended within the first month"


class VerificationMethodError(ValidationFailedError):
    code = "gdpr_verification_method_not_allowed"
    title = "This way of verifying the identity is not available here"


class ExportNotAvailableError(ConflictError):
    code = "gdpr_export_not_available"
    title = "The request has no export that can still be downloaded"


class DownloadLinkInvalidError(NotFoundError):
    code = "download_link_invalid"
    title = "No such download"


class DownloadLinkUsedError(ConflictError):
    code = "download_link_used"
    title = "This download link has been used already"


class DownloadLinkExpiredError(ConflictError):
    code = "download_link_expired"
    title = "This download link has expired"


class RestrictionNotLiftableError(ConflictError):
    code = "gdpr_restriction_not_liftable"
    title = "Restrictions kept for a legal retention duty cannot be lifted"


class RetentionPolicyError(ValidationFailedError):
    code = "gdpr_retention_too_short"
    title = "A retention period cannot be shorter than the statutory one"
