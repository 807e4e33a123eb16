"""Invoice documents (issue 5): the frozen snapshot, the content rules, the EN 16931 XML and
the PDF/A-3b with the XML embedded. Pure code: no database, no Flask, no clock.

The persistence and numbering layer builds an :class:`InvoiceSnapshot` (parties as they
are on the issue date, lines with their :class:`tax.model.TaxDecision`), stores
:func:`canonical_json` with :func:`content_sha256`, and calls :func:`render_xml` and
:func:`billing.documents.pdf.render_invoice` (PDF and XML). Both renderers validate the
snapshot first and raise ``invoice_incomplete`` / ``invoice_invalid``
(:mod:`billing.documents.errors`). See ``docs/invoices.md``.

The PDF module is not imported here: it loads WeasyPrint (Pango, fonts, half a second),
which only PDF workers need; import :mod:`billing.documents.pdf` there.

Modules: ``model`` (snapshot, totals, canonical JSON), ``rules`` (§ 14 Abs. 4 UStG,
§ 14a UStG, § 33 and § 34a UStDV, EN 16931 / XRechnung content), ``cii`` (CII XML via
drafthorse), ``pdf`` (WeasyPrint PDF/A-3b, Factur-X), ``wording`` (labels and formats),
``examples`` (one snapshot per kind of invoice), ``errors``.
"""

from billing.documents.cii import CiiProfile, render_xml
from billing.documents.errors import (
    InvoiceDocumentError,
    InvoiceIncompleteError,
    InvoiceInvalidError,
    SnapshotIntegrityError,
)
from billing.documents.model import (
    Address,
    BankAccount,
    BuyerParty,
    Contact,
    DocumentKind,
    DocumentReference,
    EurConversion,
    InvoiceLine,
    InvoiceSnapshot,
    Language,
    LineTax,
    Period,
    SellerParty,
    Totals,
    VatGroup,
    canonical_json,
    content_sha256,
    snapshot_from_json,
)
from billing.documents.rules import InvoiceProfile, check_invoice, validate_invoice

__all__ = [
    "Address",
    "BankAccount",
    "BuyerParty",
    "CiiProfile",
    "Contact",
    "DocumentKind",
    "DocumentReference",
    "EurConversion",
    "InvoiceDocumentError",
    "InvoiceIncompleteError",
    "InvoiceInvalidError",
    "InvoiceLine",
    "InvoiceProfile",
    "InvoiceSnapshot",
    "Language",
    "LineTax",
    "Period",
    "SellerParty",
    "SnapshotIntegrityError",
    "Totals",
    "VatGroup",
    "canonical_json",
    "check_invoice",
    "content_sha256",
    "render_xml",
    "snapshot_from_json",
    "validate_invoice",
]
