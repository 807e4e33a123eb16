"""What an invoice must contain, by document kind and tax treatment.

Three content profiles (TAX_RULES.md §5):

* ``full`` — § 14 Abs. 4 S. 1 UStG: full name and address of seller **and** buyer (Nr. 1),
  the seller's Steuernummer or USt-IdNr. (Nr. 2), issue date (Nr. 3), a unique number
  (Nr. 4), quantity and description (Nr. 5), the date of supply (Nr. 6, always present: it
  is the tax point the lines were decided on), net per rate (Nr. 7), rate and VAT or a
  note on the exemption (Nr. 8). Plus § 14a Abs. 1 UStG for **reverse charge**: the words
  "Steuerschuldnerschaft des Leistungsempfängers" (or "Reverse charge", UStAE 14a.1
  Abs. 2) and **both** VAT IDs. OSS invoices are full invoices at the destination rate
  (the invoicing rules of the member state of identification apply, Art. 219a(2)(b)).
* ``kleinunternehmer`` — § 34a UStDV (every line exempt under § 19 UStG): names and
  addresses of both parties, Steuernummer or USt-IdNr., issue date, description, amount
  and the note on the exemption; **no VAT rate and no VAT amount** may be shown (§ 14c
  UStG otherwise) — the renderers omit them, the rules check the note and the regime
  (old note until 2024, new § 19 Abs. 1 note from 2025, by the supply date).
* ``small_amount`` — § 33 UStDV: gross total ≤ 250 EUR (150 EUR before 2017), only the
  seller's name and address, issue date, description, gross amount and rate (or the
  exemption note). Not for reverse-charge supplies (§ 33 S. 3 UStDV).

The e-invoice adds requirements of its own, enforced for every profile so that the XML
always passes EN 16931: a document number (BR-02; the platform numbers every document,
GoBD), the buyer's name and country (BR-07, BR-11), the seller's Steuernummer or VAT ID
(BR-S-02, BR-E-02, BR-CO-26), a due date or payment terms when an amount is due
(BR-CO-25), one exemption reason per category and rate (BR-E-10, BR-AE-10, BR-O-10), and
category O alone on its invoice (BR-O-11). Out-of-scope invoices may not carry any VAT ID
(BR-O-02), so they need the Steuernummer. :func:`check_xrechnung` adds the XRechnung
(CIUS BR-DE) fields. Every text must be representable in XML 1.0 (no control characters
other than tab and line breaks, no lone surrogates): the e-invoice could not be written.

Each problem names the field as a dotted path into the snapshot (``buyer.address.city``,
``lines[0].tax.rate``); :func:`validate_invoice` raises :class:`InvoiceIncompleteError`
(``invoice_incomplete``) when something is missing, else :class:`InvoiceInvalidError`
(``invoice_invalid``) when something contradicts the treatment.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from billing.documents.errors import InvoiceIncompleteError, InvoiceInvalidError
from billing.documents.model import (
    EUR,
    Address,
    DocumentKind,
    InvoiceSnapshot,
    to_decimal,
)
from tax.kleinunternehmer import Regime, rules_on
from tax.model import Treatment, VatCategory
from tax.notes import NoteKey
from tax.rounding import round_money
from tax.territories import ISO_COUNTRIES


class InvoiceProfile(StrEnum):
    """Which content rules a snapshot follows."""

    FULL = "full"  # § 14 Abs. 4 UStG (+ § 14a UStG)
    KLEINUNTERNEHMER = "kleinunternehmer"  # § 34a UStDV
    SMALL_AMOUNT = "small_amount"  # § 33 UStDV


@dataclass(frozen=True, slots=True)
class SmallAmountLimit:
    """The § 33 UStDV gross limit (EUR) for invoices issued between two dates."""

    valid_from: date | None
    valid_to: date | None
    gross_eur: Decimal
    source: str


# Dated data (TAX_RULES.md §5.3): 250 EUR since 2017 (Zweites Bürokratieentlastungsgesetz),
# 150 EUR before; the start of the 150 EUR limit is not recorded here.
SMALL_AMOUNT_LIMITS: tuple[SmallAmountLimit, ...] = (
    SmallAmountLimit(None, date(2016, 12, 31), Decimal(150), "§ 33 UStDV until 2016"),
    SmallAmountLimit(date(2017, 1, 1), None, Decimal(250), "§ 33 UStDV since 2017"),
)


def small_amount_limit(on: date) -> Decimal:
    """The § 33 UStDV gross limit in EUR for an invoice issued on ``on``."""
    for limit in SMALL_AMOUNT_LIMITS:
        if (limit.valid_from is None or limit.valid_from <= on) and (
            limit.valid_to is None or on <= limit.valid_to
        ):
            return limit.gross_eur
    raise AssertionError("SMALL_AMOUNT_LIMITS covers every date")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``missing`` fields make the invoice incomplete, the others invalid."""

    field: str
    reason: str
    missing: bool


# The EN 16931 category each treatment is coded with (docs/tax.md, "Treatments").
CATEGORY_OF: dict[Treatment, VatCategory] = {
    Treatment.DOMESTIC: VatCategory.STANDARD,
    Treatment.OSS_DESTINATION: VatCategory.STANDARD,
    Treatment.DESTINATION_NO_OSS: VatCategory.STANDARD,
    Treatment.REVERSE_CHARGE: VatCategory.REVERSE_CHARGE,
    Treatment.OUT_OF_SCOPE: VatCategory.NOT_SUBJECT,
    Treatment.KLEINUNTERNEHMER_EXEMPT: VatCategory.EXEMPT,
    Treatment.EU_SME_EXEMPT: VatCategory.EXEMPT,
}

# Notes a line of the treatment must carry (any one of them; the first is the usual one).
_REQUIRED_NOTES: dict[Treatment, tuple[NoteKey, ...]] = {
    # § 14a Abs. 1 UStG; NOT_TAXABLE_IN_GERMANY only for a Kleinunternehmer whose adviser
    # rejects the reverse-charge wording (tax.model.TaxPolicy).
    Treatment.REVERSE_CHARGE: (NoteKey.REVERSE_CHARGE, NoteKey.NOT_TAXABLE_IN_GERMANY),
    Treatment.OUT_OF_SCOPE: (NoteKey.OUT_OF_SCOPE,),
    Treatment.EU_SME_EXEMPT: (NoteKey.EU_SME_EXEMPT,),
}
_KU_NOTE = {
    Regime.FORECAST: NoteKey.KLEINUNTERNEHMER_UNTIL_2024,
    Regime.RUNNING: NoteKey.KLEINUNTERNEHMER_FROM_2025,
}

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_VAT_ID = re.compile(r"[A-Z]{2}[0-9A-Za-z+*.]{2,13}")
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def profile_of(snapshot: InvoiceSnapshot) -> InvoiceProfile:
    """The content profile: § 33 for small-amount invoices, § 34a when every line is a
    Kleinunternehmer supply, else the full § 14 Abs. 4 set."""
    if snapshot.kind is DocumentKind.SMALL_AMOUNT:
        return InvoiceProfile.SMALL_AMOUNT
    if snapshot.lines and all(
        line.tax.treatment is Treatment.KLEINUNTERNEHMER_EXEMPT for line in snapshot.lines
    ):
        return InvoiceProfile.KLEINUNTERNEHMER
    return InvoiceProfile.FULL


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


class _Findings:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def missing(self, field: str, reason: str) -> None:
        self.items.append(Problem(field, reason, missing=True))

    def invalid(self, field: str, reason: str) -> None:
        self.items.append(Problem(field, reason, missing=False))

    def require(self, value: str | None, field: str, reason: str) -> None:
        if _blank(value):
            self.missing(field, reason)


def _check_address(out: _Findings, address: Address, path: str, basis: str) -> None:
    out.require(address.line1, f"{path}.line1", basis)
    out.require(address.postal_code, f"{path}.postal_code", basis)
    out.require(address.city, f"{path}.city", basis)


def _check_parties(out: _Findings, snapshot: InvoiceSnapshot, profile: InvoiceProfile) -> None:
    seller, buyer = snapshot.seller, snapshot.buyer
    name_basis = {
        InvoiceProfile.FULL: "§ 14 Abs. 4 Nr. 1 UStG",
        InvoiceProfile.KLEINUNTERNEHMER: "§ 34a Nr. 1 UStDV",
        InvoiceProfile.SMALL_AMOUNT: "§ 33 Nr. 1 UStDV",
    }[profile]
    out.require(seller.legal_name, "seller.legal_name", name_basis)
    _check_address(out, seller.address, "seller.address", name_basis)
    out.require(buyer.name, "buyer.name", "EN 16931 BR-07 (buyer name)")
    if profile is not InvoiceProfile.SMALL_AMOUNT:
        _check_address(out, buyer.address, "buyer.address", name_basis)
    for path, country in (
        ("seller.address.country", seller.address.country),
        ("buyer.address.country", buyer.address.country),
    ):
        if country not in ISO_COUNTRIES:
            out.invalid(path, "not an ISO 3166-1 alpha-2 country code")
    if _blank(seller.tax_number) and _blank(seller.vat_id):
        reason = "Steuernummer or USt-IdNr. required (§ 14 Abs. 4 Nr. 2 UStG, BR-CO-26)"
        out.missing("seller.tax_number", reason)
        out.missing("seller.vat_id", reason)
    for path, vat_id in (("seller.vat_id", seller.vat_id), ("buyer.vat_id", buyer.vat_id)):
        if not _blank(vat_id) and not _VAT_ID.fullmatch(vat_id or ""):
            out.invalid(path, "VAT ID must start with its country prefix (BR-CO-09)")
    if not _HEX_COLOUR.fullmatch(seller.accent_color):
        out.invalid("seller.accent_color", "a CSS colour #rrggbb")
    if seller.logo is not None and not seller.logo.startswith((_PNG, _JPEG)):
        out.invalid("seller.logo", "PNG or JPEG image")


def _check_lines(out: _Findings, snapshot: InvoiceSnapshot) -> None:  # noqa: PLR0912 - one branch per rule
    if not snapshot.lines:
        out.missing("lines", "an invoice needs at least one line (§ 14 Abs. 4 Nr. 5 UStG)")
    reasons: dict[tuple[VatCategory, Decimal], tuple[str | None, str | None]] = {}
    for i, line in enumerate(snapshot.lines):
        path = f"lines[{i}]"
        tax = line.tax
        out.require(line.description, f"{path}.description", "§ 14 Abs. 4 Nr. 5 UStG")
        if line.quantity <= 0:
            out.invalid(f"{path}.quantity", "must be positive (credit notes too, type 381)")
        if line.unit_price_minor < 0:
            out.invalid(f"{path}.unit_price_minor", "must not be negative (BR-27)")
        if line.currency != snapshot.currency:
            out.invalid(f"{path}.currency", f"must be the document currency {snapshot.currency}")
        if line.period is not None and line.period.start > line.period.end:
            out.invalid(f"{path}.period", "starts after it ends")
        if CATEGORY_OF[tax.treatment] is not tax.category:
            out.invalid(
                f"{path}.tax.category",
                f"treatment {tax.treatment} is coded {CATEGORY_OF[tax.treatment]}",
            )
        if tax.category is VatCategory.STANDARD:
            if tax.rate <= 0:
                out.invalid(f"{path}.tax.rate", "standard-rated lines need a rate (BR-S-05)")
            if tax.exemption_reason or tax.exemption_reason_code:
                out.invalid(f"{path}.tax.exemption_reason", "not allowed for S (BR-S-10)")
        else:
            if tax.rate != 0:
                out.invalid(f"{path}.tax.rate", f"category {tax.category} has rate 0")
            if _blank(tax.exemption_reason) and _blank(tax.exemption_reason_code):
                out.missing(f"{path}.tax.exemption_reason", f"BR-{tax.category}-10")
        key = (tax.category, tax.rate)
        reason = (tax.exemption_reason_code, tax.exemption_reason)
        if reasons.setdefault(key, reason) != reason:
            out.invalid(
                f"{path}.tax.exemption_reason",
                "one exemption reason per category and rate (EN 16931 BG-23)",
            )
        required = _REQUIRED_NOTES.get(tax.treatment)
        if required is not None and not set(required).intersection(tax.note_keys):
            out.missing(f"{path}.tax.note_keys", f"needs the note {required[0]}")
        if tax.treatment is Treatment.KLEINUNTERNEHMER_EXEMPT:
            # old § 19 note until 2024, the exemption note from 2025 (by the tax point)
            ku_note = _KU_NOTE[rules_on(snapshot.supply_date).regime]
            if ku_note not in tax.note_keys:
                out.missing(
                    f"{path}.tax.note_keys",
                    f"needs the note {ku_note} for a supply on {snapshot.supply_date}",
                )
            if not snapshot.seller.kleinunternehmer:
                out.invalid("seller.kleinunternehmer", "Kleinunternehmer lines need the flag")
        if tax.treatment is Treatment.EU_SME_EXEMPT and _blank(snapshot.seller.eu_sme_id):
            out.missing("seller.eu_sme_id", "the EX number (§ 19a UStG)")
    categories = snapshot.categories
    if VatCategory.NOT_SUBJECT in categories and len(categories) > 1:
        out.invalid("lines", "category O cannot be mixed with other categories (BR-O-11)")


def _check_treatments(out: _Findings, snapshot: InvoiceSnapshot) -> None:
    categories = snapshot.categories
    if VatCategory.REVERSE_CHARGE in categories:
        # § 14a Abs. 1 S. 3 UStG; EN 16931 BR-AE-02 / BR-AE-03.
        out.require(snapshot.seller.vat_id, "seller.vat_id", "reverse charge: § 14a Abs. 1 UStG")
        out.require(snapshot.buyer.vat_id, "buyer.vat_id", "reverse charge: § 14a Abs. 1 UStG")
    if VatCategory.NOT_SUBJECT in categories and _blank(snapshot.seller.tax_number):
        # BR-O-02 forbids the VAT IDs, so § 14 Abs. 4 Nr. 2 UStG needs the Steuernummer.
        out.missing("seller.tax_number", "category O shows no VAT ID (BR-O-02)")


def _check_document(out: _Findings, snapshot: InvoiceSnapshot) -> None:
    totals = snapshot.totals
    out.require(snapshot.number, "number", "§ 14 Abs. 4 Nr. 4 UStG, BR-02")
    if snapshot.service_period is not None and (
        snapshot.service_period.start > snapshot.service_period.end
    ):
        out.invalid("service_period", "starts after it ends")
    if snapshot.kind is DocumentKind.CREDIT_NOTE:
        ref = snapshot.credit_note_of
        if ref is None:
            out.missing("credit_note_of", "the corrected invoice (§ 31 Abs. 5 UStDV, BG-3)")
        else:
            out.require(ref.number, "credit_note_of.number", "§ 31 Abs. 5 UStDV")
    if not 0 <= snapshot.paid_minor <= totals.gross_minor:
        out.invalid("paid_minor", "between zero and the gross total (BR-CO-16)")
    if totals.due_minor > 0 and snapshot.due_date is None and _blank(snapshot.payment_terms):
        out.missing("due_date", "due date or payment terms (BR-CO-25)")
    if snapshot.currency != EUR and totals.vat_minor != 0:
        conversion = snapshot.eur_conversion
        if conversion is None:
            out.missing("eur_conversion", "VAT in EUR (Art. 230 VAT Directive)")
        elif conversion.rate <= 0:
            out.invalid("eur_conversion.rate", "must be positive")


def _gross_eur(snapshot: InvoiceSnapshot) -> Decimal | None:
    gross = to_decimal(snapshot.totals.gross_minor, snapshot.currency)
    if snapshot.currency == EUR:
        return gross
    conversion = snapshot.eur_conversion
    if conversion is None or conversion.rate <= 0:
        return None
    return round_money(gross / conversion.rate, EUR)


def _check_small_amount(out: _Findings, snapshot: InvoiceSnapshot) -> None:
    if VatCategory.REVERSE_CHARGE in snapshot.categories:
        out.invalid("kind", "§ 33 S. 3 UStDV: no small-amount invoice for reverse charge")
    gross = _gross_eur(snapshot)
    if gross is None:
        out.missing("eur_conversion", "the gross in EUR decides § 33 UStDV")
        return
    limit = small_amount_limit(snapshot.issue_date)
    if gross > limit:
        out.invalid("kind", f"gross {gross} EUR exceeds the § 33 UStDV limit of {limit} EUR")


# the characters XML 1.0 allows (§ 2.2 "Char"); anything else makes the CII XML unwritable
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _texts(value: object, path: str) -> Iterator[tuple[str, str]]:
    """Every string in the snapshot with its dotted path (``lines[0].description``)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from _texts(item, f"{path}[{i}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            if f.init:  # derived fields (totals) are computed from the others
                name = f"{path}.{f.name}" if path else f.name
                yield from _texts(getattr(value, f.name), name)


# init field names per dataclass type: the walk below runs for every invoice a billing run
# makes, and ``dataclasses.fields`` per object was a sixth of the run's time
_INIT_FIELDS: dict[type, tuple[str, ...]] = {}


def _strings(value: object, found: list[str]) -> None:
    """Append every string in ``value`` to ``found`` (no paths: the cheap first pass)."""
    kind = type(value)
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, tuple):
        for item in value:
            _strings(item, found)
    elif (names := _INIT_FIELDS.get(kind)) is not None:
        for name in names:
            _strings(getattr(value, name), found)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _INIT_FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value) if f.init)
        _strings(value, found)


def _check_text(out: _Findings, snapshot: InvoiceSnapshot) -> None:
    found: list[str] = []
    _strings(snapshot, found)
    if not _NOT_XML_CHAR.search("\n".join(found)):  # "\n" is allowed: it cannot hide one
        return
    for path, text in _texts(snapshot, ""):
        if _NOT_XML_CHAR.search(text):
            out.invalid(path, "contains control characters an XML e-invoice cannot carry")


def check_invoice(snapshot: InvoiceSnapshot) -> tuple[Problem, ...]:
    """Every problem of ``snapshot`` under its content profile, in a stable order."""
    out = _Findings()
    profile = profile_of(snapshot)
    _check_text(out, snapshot)
    _check_parties(out, snapshot, profile)
    _check_document(out, snapshot)
    _check_lines(out, snapshot)
    _check_treatments(out, snapshot)
    if profile is InvoiceProfile.SMALL_AMOUNT:
        _check_small_amount(out, snapshot)
    return _dedupe(out.items)


def check_xrechnung(snapshot: InvoiceSnapshot) -> tuple[Problem, ...]:
    """The problems of :func:`check_invoice` plus the XRechnung CIUS fields (BR-DE)."""
    out = _Findings()
    out.items.extend(check_invoice(snapshot))
    out.require(snapshot.buyer_reference, "buyer_reference", "BT-10 (BR-DE-15)")
    contact = snapshot.seller.contact
    if contact is None:
        out.missing("seller.contact", "seller contact BG-6 (BR-DE-2)")
    else:
        out.require(contact.name, "seller.contact.name", "BR-DE-5")
        out.require(contact.phone, "seller.contact.phone", "BR-DE-6")
        out.require(contact.email, "seller.contact.email", "BR-DE-7")
    out.require(snapshot.buyer.electronic_address, "buyer.electronic_address", "BT-49")
    if profile_of(snapshot) is InvoiceProfile.SMALL_AMOUNT:
        out.require(snapshot.buyer.address.city, "buyer.address.city", "BR-DE-8")
        out.require(snapshot.buyer.address.postal_code, "buyer.address.postal_code", "BR-DE-9")
    return _dedupe(out.items)


def _dedupe(items: list[Problem]) -> tuple[Problem, ...]:
    seen: dict[tuple[str, bool], Problem] = {}
    for item in items:
        seen.setdefault((item.field, item.missing), item)
    return tuple(seen.values())


def raise_for(problems: tuple[Problem, ...]) -> None:
    """Raise :class:`InvoiceIncompleteError` when a field is missing, else
    :class:`InvoiceInvalidError` when there is any problem; return when there is none."""
    if not problems:
        return
    errors: dict[str, str] = {}
    for problem in problems:
        errors.setdefault(problem.field, problem.reason)
    missing = [p.field for p in problems if p.missing]
    if missing:
        raise InvoiceIncompleteError(
            "the invoice lacks mandatory content: " + ", ".join(dict.fromkeys(missing)),
            errors=errors,
        )
    raise InvoiceInvalidError(
        "the invoice content contradicts its tax treatment: " + ", ".join(errors),
        errors=errors,
    )


def validate_invoice(snapshot: InvoiceSnapshot) -> InvoiceProfile:
    """The snapshot's content profile; raises when :func:`check_invoice` finds a problem."""
    raise_for(check_invoice(snapshot))
    return profile_of(snapshot)


def validate_xrechnung(snapshot: InvoiceSnapshot) -> InvoiceProfile:
    """Like :func:`validate_invoice`, with the XRechnung fields required as well."""
    raise_for(check_xrechnung(snapshot))
    return profile_of(snapshot)
