"""EN 16931 e-invoice in UN/CEFACT CII syntax (Factur-X / ZUGFeRD profile EN 16931), built
with ``drafthorse``.

Mapping of the tax decision (TAX_RULES.md §2.1, §2.2, §6; docs/tax.md):

* ``S`` (domestic, OSS at the destination rate): rate and VAT per group (BR-CO-17).
* ``AE`` (reverse charge): rate 0, exemption reason code ``VATEX-EU-AE`` "Reverse
  charge", seller **and** buyer VAT ID (BR-AE-02/03/10).
* ``E`` (Kleinunternehmer, EU SME scheme): rate 0, the § 19 / Art. 284 reason text
  (BR-E-10; no VATEX code exists for § 19 UStG).
* ``O`` (out of scope): **no** VAT ID of either party (BR-O-02), no line rate (BR-O-05);
  the Steuernummer is the seller's tax registration (BT-32, scheme ``FC``).
* BR-CO-26 wants a seller identifier (BT-29), legal registration (BT-30) or VAT ID
  (BT-31): without a VAT ID in the XML and without a Handelsregister entry, the
  Steuernummer is given as the seller identifier too.
* Credit notes are type 381 with positive amounts and a reference to the corrected
  invoice (BG-3).
* Non-EUR invoices with VAT state the VAT total in EUR as well (BT-6 ``EUR``, BT-111);
  the exchange rate goes into a note, EN 16931 has no field for it.
* Legal notes (:mod:`tax.notes`) are document notes (BT-22) with subject code ``TXD``.

Profiles: :attr:`CiiProfile.EN16931` (guideline ``urn:cen.eu:en16931:2017``, embedded in
the PDF as ``factur-x.xml``) and :attr:`CiiProfile.XRECHNUNG` (guideline of XRechnung 3.0,
plus buyer reference BT-10, seller contact BG-6, electronic addresses BT-34/BT-49 and
payment instructions BG-16 that the CIUS requires). Only EN 16931 is validated offline (XSD
+ Schematron); the KoSIT XRechnung validator (Java) is not part of the checks.

Every document is checked against the Factur-X EN 16931 XSD bundled with drafthorse when
it is serialised (about 2 ms), so an invalid structure never leaves this module.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.tradelines import LineItem

from billing.documents.model import (
    EUR,
    Address,
    DocumentKind,
    InvoiceLine,
    InvoiceSnapshot,
    SellerParty,
    to_decimal,
)
from billing.documents.rules import validate_invoice, validate_xrechnung
from billing.documents.wording import day, number, text_for
from tax.model import VatCategory
from tax.notes import text as note_text

FACTURX_FILENAME = "factur-x.xml"
_CENT = Decimal("0.01")


class CiiProfile(StrEnum):
    """Which CIUS the XML follows (EN 16931 BT-24)."""

    EN16931 = "en16931"
    XRECHNUNG = "xrechnung"

    @property
    def guideline(self) -> str:
        """The specification identifier (BT-24)."""
        if self is CiiProfile.XRECHNUNG:
            return "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
        return "urn:cen.eu:en16931:2017"


# BT-23 business process; XRechnung documents name the Peppol billing process.
_BUSINESS_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
_SEPA_CREDIT_TRANSFER = "58"  # UNTDID 4461
_MEANS_NOT_DEFINED = "1"  # UNTDID 4461 "Instrument not defined"
_TAX_NOTE = "TXD"  # UNTDID 4451 "Tax declaration"
_REGISTRATION_NOTE = "REG"  # UNTDID 4451 "Regulatory information"


def _plain(value: Decimal) -> Decimal:
    """``value`` without exponent notation (``1E+1`` → ``10``), as the XSD decimal needs."""
    return Decimal(format(value, "f"))


def _rate(value: Decimal) -> Decimal:
    return value.quantize(_CENT)


def _add_note(doc: Any, content: str, subject: str) -> None:
    note = IncludedNote()
    note.content = content
    note.subject_code = subject
    doc.header.notes.add(note)


def _seller(party: Any, seller: SellerParty, *, vat_ids: bool, profile: CiiProfile) -> None:
    vat_id_shown = vat_ids and bool(seller.vat_id)
    if not vat_id_shown and not seller.legal_registration_id and seller.tax_number:
        party.id = seller.tax_number  # BR-CO-26 fallback, see the module docstring
    party.name = seller.legal_name
    if seller.legal_registration_id:
        party.legal_organization.id = seller.legal_registration_id
    if profile is CiiProfile.XRECHNUNG and seller.contact is not None:
        party.contact.person_name = seller.contact.name
        party.contact.telephone.number = seller.contact.phone
        party.contact.email.address = seller.contact.email
    _address(party, seller.address)
    if profile is CiiProfile.XRECHNUNG and seller.contact is not None:
        party.electronic_address.uri_ID = ("EM", seller.contact.email)
    if vat_id_shown:
        party.tax_registrations.add(TaxRegistration(id=("VA", seller.vat_id)))
    if seller.tax_number:
        party.tax_registrations.add(TaxRegistration(id=("FC", seller.tax_number)))


def _address(party: Any, address: Address) -> None:
    if address.postal_code:
        party.address.postcode = address.postal_code
    if address.line1:
        party.address.line_one = address.line1
    if address.line2:
        party.address.line_two = address.line2
    if address.city:
        party.address.city_name = address.city
    party.address.country_id = address.country


def _line(index: int, line: InvoiceLine, net_minor: int, currency: str) -> Any:
    item = LineItem()
    item.document.line_id = str(index)
    item.product.name = line.description
    item.agreement.net.amount = to_decimal(line.unit_price_minor, currency)
    item.delivery.billed_quantity = (_plain(line.quantity), line.unit_code)
    tax = item.settlement.trade_tax
    tax.type_code = "VAT"
    tax.category_code = line.tax.category.value
    if line.tax.category is not VatCategory.NOT_SUBJECT:  # BR-O-05: no rate for O
        tax.rate_applicable_percent = _rate(line.tax.rate)
    if line.period is not None:
        item.settlement.period.start = line.period.start
        item.settlement.period.end = line.period.end
    item.settlement.monetary_summation.total_amount = to_decimal(net_minor, currency)
    return item


def _header(doc: Any, snapshot: InvoiceSnapshot, profile: CiiProfile) -> None:
    lang = snapshot.language
    if profile is CiiProfile.XRECHNUNG:
        doc.context.business_parameter.id = _BUSINESS_PROCESS
    doc.context.guideline_parameter.id = profile.guideline
    doc.header.id = snapshot.number
    doc.header.type_code = snapshot.kind.type_code
    doc.header.issue_date_time = snapshot.issue_date
    for key in snapshot.legal_note_keys:
        _add_note(doc, note_text(key, lang), _TAX_NOTE)
    conversion = snapshot.eur_conversion
    vat_eur = snapshot.totals.vat_eur_minor
    if vat_eur is not None and conversion is not None:
        _add_note(
            doc,
            text_for(lang, "vat_in_eur_note").format(
                amount=number(to_decimal(vat_eur, EUR), lang),
                rate=number(conversion.rate, lang, places=None),
                currency=snapshot.currency,
                source=conversion.source,
                date=day(conversion.rate_date, lang),
            ),
            _TAX_NOTE,
        )
    if snapshot.seller.legal_registration_id:
        _add_note(doc, snapshot.seller.legal_registration_id, _REGISTRATION_NOTE)


def _agreement(agreement: Any, snapshot: InvoiceSnapshot, profile: CiiProfile) -> None:
    # BR-O-02: an out-of-scope invoice names no VAT ID at all.
    vat_ids = VatCategory.NOT_SUBJECT not in snapshot.categories
    if snapshot.buyer_reference:
        agreement.buyer_reference = snapshot.buyer_reference
    _seller(agreement.seller, snapshot.seller, vat_ids=vat_ids, profile=profile)
    buyer = snapshot.buyer
    agreement.buyer.name = buyer.name
    _address(agreement.buyer, buyer.address)
    if profile is CiiProfile.XRECHNUNG and buyer.electronic_address:
        agreement.buyer.electronic_address.uri_ID = ("EM", buyer.electronic_address)
    if vat_ids and buyer.vat_id:
        agreement.buyer.tax_registrations.add(TaxRegistration(id=("VA", buyer.vat_id)))


def _vat_breakdown(settlement: Any, snapshot: InvoiceSnapshot) -> None:
    currency = snapshot.currency
    for group in snapshot.totals.groups:
        trade_tax = ApplicableTradeTax()
        trade_tax.calculated_amount = to_decimal(group.vat_minor, currency)
        trade_tax.type_code = "VAT"
        if group.exemption_reason:
            trade_tax.exemption_reason = group.exemption_reason
        trade_tax.basis_amount = to_decimal(group.taxable_minor, currency)
        trade_tax.category_code = group.category.value
        if group.exemption_reason_code:
            trade_tax.exemption_reason_code = group.exemption_reason_code
        trade_tax.rate_applicable_percent = _rate(group.rate)
        settlement.trade_tax.add(trade_tax)


def _summation(settlement: Any, snapshot: InvoiceSnapshot) -> None:
    currency = snapshot.currency
    totals = snapshot.totals
    summation = settlement.monetary_summation
    summation.line_total = to_decimal(totals.net_minor, currency)
    summation.tax_basis_total = to_decimal(totals.net_minor, currency)
    summation.tax_total = (to_decimal(totals.vat_minor, currency), currency)
    if totals.vat_eur_minor is not None:
        summation.tax_total_other_currency.add((to_decimal(totals.vat_eur_minor, EUR), EUR))
    summation.grand_total = to_decimal(totals.gross_minor, currency)
    if totals.paid_minor:
        summation.prepaid_total = to_decimal(totals.paid_minor, currency)
    summation.due_amount = to_decimal(totals.due_minor, currency)


def _settlement(settlement: Any, snapshot: InvoiceSnapshot, profile: CiiProfile) -> None:
    if snapshot.payment_reference:
        settlement.payment_reference = snapshot.payment_reference
    if snapshot.totals.vat_eur_minor is not None:
        settlement.tax_currency_code = EUR
    settlement.currency_code = snapshot.currency
    _payment_means(settlement, snapshot, profile)
    _vat_breakdown(settlement, snapshot)
    if snapshot.service_period is not None:
        settlement.period.start = snapshot.service_period.start
        settlement.period.end = snapshot.service_period.end
    if snapshot.payment_terms or snapshot.due_date is not None:
        terms = PaymentTerms()
        if snapshot.payment_terms:
            terms.description = snapshot.payment_terms
        if snapshot.due_date is not None:
            terms.due = snapshot.due_date
        settlement.terms.add(terms)
    _summation(settlement, snapshot)
    if snapshot.credit_note_of is not None:
        reference = settlement.invoice_referenced_document
        reference.issuer_assigned_id = snapshot.credit_note_of.number
        reference.issue_date_time = snapshot.credit_note_of.issue_date


def build_document(snapshot: InvoiceSnapshot, profile: CiiProfile = CiiProfile.EN16931) -> Any:
    """The drafthorse ``Document`` for ``snapshot`` (not validated; see :func:`render_xml`).
    drafthorse orders the elements as the CII schema wants them, whatever the call order."""
    doc = Document()
    _header(doc, snapshot, profile)
    lines = zip(snapshot.lines, snapshot.totals.line_net_minor, strict=True)
    for index, (line, net) in enumerate(lines, start=1):
        doc.trade.items.add(_line(index, line, net, snapshot.currency))
    _agreement(doc.trade.agreement, snapshot, profile)
    doc.trade.delivery.event.occurrence = snapshot.supply_date
    _settlement(doc.trade.settlement, snapshot, profile)
    return doc


def _payment_means(settlement: Any, snapshot: InvoiceSnapshot, profile: CiiProfile) -> None:
    bank = snapshot.seller.bank
    transfer = snapshot.kind is not DocumentKind.CREDIT_NOTE and snapshot.totals.due_minor > 0
    if bank is not None and transfer:
        means = PaymentMeans()
        means.type_code = _SEPA_CREDIT_TRANSFER
        means.payee_account.iban = bank.iban
        means.payee_account.account_name = bank.account_holder
        if bank.bic:
            means.payee_institution.bic = bank.bic
        settlement.payment_means.add(means)
    elif profile is CiiProfile.XRECHNUNG:
        # BR-DE-1 wants payment instructions on every XRechnung, refunds and paid ones too.
        means = PaymentMeans()
        means.type_code = _MEANS_NOT_DEFINED
        settlement.payment_means.add(means)


def render_xml(snapshot: InvoiceSnapshot, profile: CiiProfile = CiiProfile.EN16931) -> bytes:
    """The CII XML of ``snapshot`` (UTF-8, with declaration), checked against the content
    rules first (:mod:`billing.documents.rules`, raising ``invoice_incomplete`` or
    ``invoice_invalid``) and against the Factur-X EN 16931 XSD when serialised."""
    if profile is CiiProfile.XRECHNUNG:
        validate_xrechnung(snapshot)
    else:
        validate_invoice(snapshot)
    xml: bytes = build_document(snapshot, profile).serialize(schema="FACTUR-X_EN16931")
    return xml
