"""Domain errors of the invoice document layer.

They extend :class:`saas.kernel.errors.DomainError`, so the HTTP layer maps them to
RFC 9457 problem documents like every other domain failure: ``code`` is stable (part of
the API, never reworded), ``kind`` picks the status, ``errors`` maps each offending field
(dotted path into the snapshot, e.g. ``buyer.address.city``) to a short reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from saas.kernel.errors import DomainError, ErrorKind


class InvoiceDocumentError(DomainError):
    """Base class: the snapshot cannot become a legally sufficient document."""

    code = "invoice_document_error"
    kind = ErrorKind.INVALID
    title = "The invoice document cannot be produced"

    def __init__(self, detail: str, *, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(detail, errors=dict(errors or {}))

    @property
    def fields(self) -> tuple[str, ...]:
        """The offending fields, in the order they were found."""
        return tuple(self.errors)


class InvoiceIncompleteError(InvoiceDocumentError):
    """Fields the applicable invoice content rules require are missing
    (§ 14 Abs. 4 UStG, § 14a UStG, § 33 / § 34a UStDV, EN 16931 / XRechnung)."""

    code = "invoice_incomplete"
    title = "The invoice lacks mandatory content"


class InvoiceInvalidError(InvoiceDocumentError):
    """The content contradicts the tax treatment or the document kind (e.g. a reverse-charge
    line on a § 33 UStDV small-amount invoice, or category O mixed with other categories)."""

    code = "invoice_invalid"
    title = "The invoice content contradicts its tax treatment"


class SnapshotIntegrityError(InvoiceDocumentError):
    """A stored snapshot does not reproduce: its recorded totals differ from the totals
    recomputed from its lines, or its JSON does not follow the snapshot format."""

    code = "invoice_snapshot_corrupt"
    kind = ErrorKind.CONFLICT
    title = "The stored invoice snapshot is inconsistent"
