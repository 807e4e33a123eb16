"""PDF/A-3b invoices with the EN 16931 XML embedded (Factur-X / ZUGFeRD, profile EN 16931).

The HTML template (``templates/invoice.html``, Jinja2, German and English labels from
:mod:`billing.documents.wording`, tenant branding: name, logo, accent colour) is rendered
by WeasyPrint as PDF/A-3b. The CII XML (:func:`billing.documents.cii.render_xml`) is
attached as ``factur-x.xml`` with relationship ``/Data`` and listed in the catalogue's
``/AF``; the XMP metadata carries ``pdfaid:part=3``, ``pdfaid:conformance=B``, the
Factur-X properties (``fx:DocumentType`` INVOICE, ``fx:DocumentFileName``, ``fx:Version``
1.0, ``fx:ConformanceLevel`` EN 16931) and the PDF/A extension schema that declares them.

**Deterministic**: the same snapshot gives the same bytes. Creation and modification
dates (document info, XMP, the attachment) are the snapshot's issue date at 00:00 UTC; the
file identifier is derived from the snapshot's content hash; nothing random or
clock-dependent is written. (The bytes do depend on the WeasyPrint, font and HarfBuzz
versions, so a regenerated copy is identical on the same software stack.)

**Safe with tenant data**: Jinja2 autoescapes every value; the accent colour and the logo
are validated (:mod:`billing.documents.rules`); the logo is inlined as a ``data:`` URL and
the URL fetcher refuses every other scheme, so rendering never reads files or the network.

Other choices:

* Category O documents show no VAT ID of either party, like their XML (BR-O-02).
* Kleinunternehmer documents (§ 34a UStDV) show no VAT rate column and no VAT amount.
* The sRGB output intent is supplied through an ``@color-profile`` rule with a ``data:``
  URL: WeasyPrint's built-in ``srgb`` intent opens its ICC file without closing it (a
  ``ResourceWarning`` per document, fatal under ``filterwarnings = error``).
* WeasyPrint lists an attachment twice in ``/AF``; a finisher removes the duplicate.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

import jinja2
from weasyprint import HTML, Attachment
from weasyprint.urls import URLFetcher

from billing.documents.cii import FACTURX_FILENAME, render_xml
from billing.documents.model import (
    EUR,
    Address,
    DocumentKind,
    InvoiceSnapshot,
    Period,
    SellerParty,
    content_sha256,
    to_decimal,
)
from billing.documents.rules import validate_invoice
from billing.documents.wording import day, labels, money, number, percent, quantity
from tax.model import VatCategory
from tax.notes import text as note_text

_OUTPUT_INTENT = "--abowerk-srgb"
_ICC = (files("weasyprint.pdf") / "sRGB2014.icc").read_bytes()
_COLOR_PROFILE_CSS = (
    f"@color-profile {_OUTPUT_INTENT} {{ src: url(data:application/vnd.iccprofile;base64,"
    f"{base64.b64encode(_ICC).decode('ascii')}); components: r, g, b }}"
)

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("billing.documents", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# English country names from the tax package's ISO 3166 table, for foreign addresses.
_COUNTRY_NAMES = {
    row["code"]: row["name"]
    for row in csv.DictReader(
        io.StringIO((files("tax.data") / "iso3166.csv").read_text(encoding="utf-8"))
    )
}

_FX_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
_FX_PROPERTIES = (
    ("DocumentFileName", "name of the embedded XML invoice file"),
    ("DocumentType", "INVOICE"),
    ("Version", "The actual version of the Factur-X XML schema"),
    ("ConformanceLevel", "The conformance level of the embedded Factur-X data"),
)
_FX_XMP = (
    (
        '<rdf:Description rdf:about="" xmlns:fx="{ns}">'
        "<fx:DocumentType>INVOICE</fx:DocumentType>"
        f"<fx:DocumentFileName>{FACTURX_FILENAME}</fx:DocumentFileName>"
        "<fx:Version>1.0</fx:Version>"
        "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>"
        "</rdf:Description>"
        '<rdf:Description rdf:about="" '
        'xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" '
        'xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" '
        'xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">'
        '<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">'
        "<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>"
        "<pdfaSchema:namespaceURI>{ns}</pdfaSchema:namespaceURI>"
        "<pdfaSchema:prefix>fx</pdfaSchema:prefix>"
        "<pdfaSchema:property><rdf:Seq>{properties}</rdf:Seq></pdfaSchema:property>"
        "</rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>"
    )
    .format(
        ns=_FX_NAMESPACE,
        properties="".join(
            '<rdf:li rdf:parseType="Resource">'
            f"<pdfaProperty:name>{name}</pdfaProperty:name>"
            "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
            "<pdfaProperty:category>external</pdfaProperty:category>"
            f"<pdfaProperty:description>{description}</pdfaProperty:description>"
            "</rdf:li>"
            for name, description in _FX_PROPERTIES
        ),
    )
    .encode("utf-8")
)
_RDF_END = b"</rdf:RDF>"


@dataclass(frozen=True, slots=True)
class RenderedInvoice:
    """A rendered document: the PDF, the XML inside it, and the snapshot's fingerprint."""

    pdf: bytes
    xml: bytes
    content_sha256: str


def _logo_uri(logo: bytes | None) -> str | None:
    if logo is None:
        return None
    media = "image/png" if logo.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{media};base64,{base64.b64encode(logo).decode('ascii')}"


def _address_lines(address: Address, home_country: str) -> list[str]:
    lines = [part for part in (address.line1, address.line2) if part]
    city = " ".join(part for part in (address.postal_code, address.city) if part)
    if city:
        lines.append(city)
    if address.country != home_country:
        lines.append(_COUNTRY_NAMES.get(address.country, address.country).upper())
    return lines


def _vat_rows(snapshot: InvoiceSnapshot, words: Mapping[str, str]) -> list[dict[str, str]]:
    """One row per standard-rated group; OSS rows name the destination country."""
    lang = snapshot.language.value
    currency = snapshot.currency
    home = snapshot.seller.address.country
    countries: dict[Decimal, set[str | None]] = {}
    for line in snapshot.lines:
        if line.tax.category is VatCategory.STANDARD:
            countries.setdefault(line.tax.rate, set()).add(line.tax.taxing_country)
    rows = []
    for group in snapshot.totals.groups:
        if group.category is not VatCategory.STANDARD:
            continue  # AE, E, O: the legal notes explain why no VAT is shown
        base = money(group.taxable_minor, currency, lang)
        rate = percent(group.rate, lang)
        where = countries.get(group.rate, set())
        country = next(iter(where)) if len(where) == 1 else None
        label = (
            words["vat_line_country"].format(country=country, rate=rate, base=base)
            if country and country != home
            else words["vat_line"].format(rate=rate, base=base)
        )
        rows.append({"label": label, "amount": money(group.vat_minor, currency, lang)})
    return rows


def _period(period: Period, words: Mapping[str, str], lang: str) -> str:
    return words["period_range"].format(start=day(period.start, lang), end=day(period.end, lang))


def _lines(snapshot: InvoiceSnapshot, words: Mapping[str, str]) -> list[dict[str, Any]]:
    lang = snapshot.language.value
    currency = snapshot.currency
    rows = []
    nets = zip(snapshot.lines, snapshot.totals.line_net_minor, strict=True)
    for index, (line, net) in enumerate(nets, start=1):
        standard = line.tax.category is VatCategory.STANDARD
        rows.append(
            {
                "pos": index,
                "description": line.description,
                "period": _period(line.period, words, lang) if line.period else None,
                "quantity": quantity(line.quantity, lang),
                "unit_price": money(line.unit_price_minor, currency, lang),
                "rate": percent(line.tax.rate, lang) if standard else "–",
                "amount": money(net, currency, lang),
            }
        )
    return rows


def _info(
    snapshot: InvoiceSnapshot, words: Mapping[str, str], show_vat_ids: bool
) -> list[tuple[str, str]]:
    lang = snapshot.language.value
    info = [
        (words["number"], snapshot.number),
        (words["issue_date"], day(snapshot.issue_date, lang)),
    ]
    if snapshot.service_period is not None:
        info.append((words["service_period"], _period(snapshot.service_period, words, lang)))
    else:
        info.append((words["supply_date"], day(snapshot.supply_date, lang)))
    if snapshot.due_date is not None:
        info.append((words["due_date"], day(snapshot.due_date, lang)))
    if snapshot.buyer_reference:
        info.append((words["buyer_reference"], snapshot.buyer_reference))
    if show_vat_ids and snapshot.buyer.vat_id:
        info.append((words["buyer_vat_id"], snapshot.buyer.vat_id))
    return info


def _tax_ids(
    seller: SellerParty, words: Mapping[str, str], show_vat_ids: bool
) -> list[tuple[str, str]]:
    tax_ids = []
    if show_vat_ids and seller.vat_id:
        tax_ids.append((words["vat_id"], seller.vat_id))
    if seller.tax_number:
        tax_ids.append((words["tax_number"], seller.tax_number))
    if seller.eu_sme_id:
        tax_ids.append((words["eu_sme_id"], seller.eu_sme_id))
    return tax_ids


def _subtitle(snapshot: InvoiceSnapshot, words: Mapping[str, str]) -> str | None:
    if snapshot.kind is DocumentKind.SMALL_AMOUNT:
        return words["subtitle_small_amount"]
    if snapshot.kind is DocumentKind.CREDIT_NOTE and snapshot.credit_note_of is not None:
        return words["corrects"].format(
            number=snapshot.credit_note_of.number,
            date=day(snapshot.credit_note_of.issue_date, snapshot.language.value),
        )
    return None


def _vat_eur(snapshot: InvoiceSnapshot, words: Mapping[str, str]) -> dict[str, str] | None:
    conversion = snapshot.eur_conversion
    vat_eur = snapshot.totals.vat_eur_minor
    if vat_eur is None or conversion is None:
        return None
    lang = snapshot.language.value
    return {
        "amount": money(vat_eur, EUR, lang),
        "note": words["vat_in_eur_note"].format(
            amount=number(to_decimal(vat_eur, EUR), lang),
            rate=number(conversion.rate, lang, places=None),
            currency=snapshot.currency,
            source=conversion.source,
            date=day(conversion.rate_date, lang),
        ),
    }


def _payment(snapshot: InvoiceSnapshot, words: Mapping[str, str]) -> str | None:
    bank = snapshot.seller.bank
    if bank is None or snapshot.kind is DocumentKind.CREDIT_NOTE:
        return None
    if snapshot.totals.due_minor <= 0:
        return None
    due = ""
    if snapshot.due_date is not None:
        due = words["pay_due"].format(date=day(snapshot.due_date, snapshot.language.value))
    return words["pay_to"].format(
        due=due,
        holder=bank.account_holder,
        iban=bank.iban,
        bic=f", BIC {bank.bic}" if bank.bic else "",
    )


def _footer(
    seller: SellerParty, words: Mapping[str, str], tax_ids: list[tuple[str, str]]
) -> list[str]:
    home = seller.address.country
    ids = [f"{label} {value}" for label, value in tax_ids]
    if seller.legal_registration_id:
        ids.append(seller.legal_registration_id)
    footer = [" · ".join([seller.legal_name, *_address_lines(seller.address, home)])]
    footer.append(" · ".join(ids))
    if seller.bank is not None:
        bank = seller.bank
        bic = f" · BIC {bank.bic}" if bank.bic else ""
        footer.append(f"{words['bank']}: {bank.account_holder} · IBAN {bank.iban}{bic}")
    return footer


def template_context(snapshot: InvoiceSnapshot) -> dict[str, Any]:
    """Everything the template prints, formatted: the template itself only lays it out."""
    lang = snapshot.language.value
    words = labels(lang)
    totals = snapshot.totals
    seller = snapshot.seller
    home = seller.address.country
    show_vat_ids = VatCategory.NOT_SUBJECT not in snapshot.categories  # BR-O-02
    charges_vat = VatCategory.STANDARD in snapshot.categories
    tax_ids = _tax_ids(seller, words, show_vat_ids)
    payment = _payment(snapshot, words)
    title = words[f"title_{snapshot.kind.value}"]
    credit_note = snapshot.kind is DocumentKind.CREDIT_NOTE
    return {
        "lang": lang,
        "words": words,
        "title": title,
        "subtitle": _subtitle(snapshot, words),
        "doc_title": f"{title} {snapshot.number}",
        "issued": f"{snapshot.issue_date.isoformat()}T00:00:00Z",
        "accent": seller.accent_color,
        "logo": _logo_uri(seller.logo),
        "seller_name": seller.legal_name,
        "seller_address": _address_lines(seller.address, home),
        "sender_line": " · ".join([seller.legal_name, *_address_lines(seller.address, home)]),
        "tax_ids": tax_ids,
        "buyer_name": snapshot.buyer.name,
        "buyer_address": _address_lines(snapshot.buyer.address, home),
        "info": _info(snapshot, words, show_vat_ids),
        "credit_note_text": words["credit_note_text"] if credit_note else None,
        "lines": _lines(snapshot, words),
        "show_vat_column": charges_vat,
        "net_total": money(totals.net_minor, snapshot.currency, lang) if charges_vat else None,
        "vat_rows": _vat_rows(snapshot, words),
        "total": money(totals.gross_minor, snapshot.currency, lang),
        "paid": money(totals.paid_minor, snapshot.currency, lang) if totals.paid_minor else None,
        "due": money(totals.due_minor, snapshot.currency, lang),
        "vat_eur": _vat_eur(snapshot, words),
        "notes": [note_text(key, lang) for key in snapshot.legal_note_keys],
        "payment_terms": snapshot.payment_terms,
        "payment": payment,
        "payment_reference": snapshot.payment_reference if payment else None,
        "footer": _footer(seller, words, tax_ids),
        "color_profile_css": _COLOR_PROFILE_CSS,
    }


def render_html(snapshot: InvoiceSnapshot) -> str:
    """The invoice as HTML (what WeasyPrint lays out)."""
    return _ENV.get_template("invoice.html").render(template_context(snapshot))


def _factur_x_rdf(original: Any) -> Any:
    def generate(variant: Any, version: Any, conformance: Any) -> bytes:
        rdf: bytes = original(variant, version, conformance)
        if not rdf.endswith(_RDF_END):  # pragma: no cover - WeasyPrint changed its output
            raise RuntimeError("unexpected XMP from WeasyPrint; cannot add Factur-X")
        return rdf[: -len(_RDF_END)] + _FX_XMP + _RDF_END

    return generate


def _dedupe_associated_files(_document: Any, pdf: Any) -> None:
    catalog_af = pdf.catalog.get("AF")
    if catalog_af is not None:
        unique = list(dict.fromkeys(catalog_af))
        catalog_af.clear()
        catalog_af.extend(unique)


def render_pdf(snapshot: InvoiceSnapshot, *, xml: bytes | None = None) -> bytes:
    """The PDF/A-3b invoice with ``factur-x.xml`` embedded. ``xml`` may be passed when it
    was already rendered for this snapshot (it is rendered otherwise)."""
    return render_invoice(snapshot, xml=xml).pdf


def render_invoice(snapshot: InvoiceSnapshot, *, xml: bytes | None = None) -> RenderedInvoice:
    """PDF and XML of ``snapshot`` together with its content hash."""
    validate_invoice(snapshot)
    if xml is None:
        xml = render_xml(snapshot)
    digest = content_sha256(snapshot)
    issued = datetime(
        snapshot.issue_date.year, snapshot.issue_date.month, snapshot.issue_date.day, tzinfo=UTC
    )
    fetcher = URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    document = HTML(string=render_html(snapshot), url_fetcher=fetcher).render(
        output_intent=_OUTPUT_INTENT
    )
    metadata = document.metadata
    metadata.generate_rdf_metadata = _factur_x_rdf(metadata.generate_rdf_metadata)
    attachment = Attachment(
        string=xml,
        name=FACTURX_FILENAME,
        description="Factur-X / ZUGFeRD invoice (EN 16931)",
        created=issued,
        modified=issued,
        relationship="Data",
    )
    pdf: bytes = document.write_pdf(
        pdf_variant="pdf/a-3b",
        output_intent=_OUTPUT_INTENT,
        attachments=[attachment],
        pdf_identifier=digest[:32].encode("ascii"),
        finisher=_dedupe_associated_files,
    )
    return RenderedInvoice(pdf=pdf, xml=xml, content_sha256=digest)
