"""The OSS return and the EC sales list of a quarter, from the finalized documents.

Which document goes where (TAX_RULES.md §3.2, §3.5, §2.1; docs/tax.md "Tax reports"):

* **OSS return** — the VAT groups with treatment ``oss_destination`` (the VAT actually
  charged per member state and rate, TAX_RULES.md §5.6):
  * an invoice belongs to the quarter of its supply date (the tax point);
  * a credit note changes the consideration when it is issued (§ 17 Abs. 1 UStG): issued in
    the quarter of the supply, it reduces that quarter's lines; issued in a later quarter,
    it is a correction of the supply's quarter declared in the later return
    (Art. 369g(4) VAT Directive; the builder refuses one more than three years late);
  * amounts in other currencies are converted by :func:`tax.oss.build_oss_return` at the
    ECB rate of the quarter's last day.
* **EC sales list** — the VAT groups with treatment ``reverse_charge`` per customer VAT ID
  (as printed on the invoice) in EUR at the document's rate (§ 16 Abs. 6 UStG): an invoice in
  the quarter of its supply; a credit note changes the list of the supply's quarter (the
  ZM of that period is corrected, § 18a Abs. 10 UStG). A Kleinunternehmer whose policy turns
  the reverse-charge wording off (``kleinunternehmer_reverse_charge_wording``, TAX_RULES.md
  §1.4 ❗) reports nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.documents.model import to_decimal
from billing.invoices.errors import ExchangeRateUnavailableError
from billing.invoices.exchange import ecb_rate
from billing.invoices.models import CREDIT_NOTE, DRAFT, Invoice, InvoiceTaxGroup
from billing.invoices.rendering import stored_snapshot
from billing.sellers.services import require_seller_profile
from billing.taxreports.errors import tax_report_failed
from tax.errors import TaxError
from tax.model import Treatment
from tax.oss import (
    EcSalesList,
    EcSalesRecord,
    ExchangeRates,
    OssRecord,
    OssReturn,
    Quarter,
    build_ec_sales_list,
    build_oss_return,
)

_EUR = "EUR"
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class _Group:
    invoice: Invoice
    taxing_country: str | None
    rate_bp: int
    taxable_minor: int
    vat_minor: int

    @property
    def sign(self) -> int:
        return -1 if self.invoice.kind == CREDIT_NOTE else 1


def _groups(
    session: Session, *, livemode: bool, treatment: Treatment, where: sa.ColumnElement[bool]
) -> list[_Group]:
    rows = session.execute(
        sa.select(
            Invoice,
            InvoiceTaxGroup.taxing_country,
            InvoiceTaxGroup.rate_bp,
            InvoiceTaxGroup.taxable_minor,
            InvoiceTaxGroup.vat_minor,
        )
        .join(
            InvoiceTaxGroup,
            sa.and_(
                InvoiceTaxGroup.tenant_id == Invoice.tenant_id,
                InvoiceTaxGroup.invoice_id == Invoice.id,
            ),
        )
        .where(
            Invoice.livemode == livemode,
            Invoice.status != DRAFT,
            InvoiceTaxGroup.treatment == treatment.value,
            where,
        )
        .order_by(Invoice.issued_on, Invoice.id, InvoiceTaxGroup.position)
    ).all()
    return [_Group(inv, country, bp, taxable, vat) for inv, country, bp, taxable, vat in rows]


def _supplied_in(quarter: Quarter) -> sa.ColumnElement[bool]:
    return Invoice.supplied_on.between(quarter.first_day, quarter.last_day)


def oss_records(session: Session, *, livemode: bool, quarter: Quarter) -> list[OssRecord]:
    """The OSS records the ``quarter``'s return is built from (see the module docstring)."""
    first, last = quarter.first_day, quarter.last_day
    is_note = Invoice.kind == CREDIT_NOTE
    belongs = sa.or_(
        sa.and_(sa.not_(is_note), _supplied_in(quarter)),
        sa.and_(is_note, Invoice.issued_on.between(first, last), Invoice.supplied_on <= last),
        sa.and_(is_note, _supplied_in(quarter), Invoice.issued_on < first),
    )
    records = []
    for group in _groups(
        session, livemode=livemode, treatment=Treatment.OSS_DESTINATION, where=belongs
    ):
        invoice = group.invoice
        if group.taxing_country is None or invoice.supplied_on is None:
            continue  # a group mixing member states cannot occur for one buyer
        supply_quarter = Quarter.of(invoice.supplied_on)
        records.append(
            OssRecord(
                supplied_on=invoice.supplied_on,
                member_state=group.taxing_country,
                rate=Decimal(group.rate_bp) / 100,
                net=group.sign * to_decimal(group.taxable_minor, invoice.currency),
                vat=group.sign * to_decimal(group.vat_minor, invoice.currency),
                currency=invoice.currency,
                corrects=supply_quarter if supply_quarter < quarter else None,
            )
        )
    return records


def oss_return(
    session: Session,
    *,
    livemode: bool,
    quarter: Quarter,
    rates: ExchangeRates | None = None,
) -> OssReturn:
    """The OSS return of ``quarter`` (422/503 ``tax_report_failed`` when it cannot be built,
    e.g. no ECB rate for a quarter end yet)."""
    profile = require_seller_profile(session, livemode=livemode)
    records = oss_records(session, livemode=livemode, quarter=quarter)
    try:
        return build_oss_return(records, quarter, rates=rates, seller_country=profile.country)
    except TaxError as exc:
        raise tax_report_failed(exc) from exc


def _net_eur(group: _Group) -> Decimal:
    invoice = group.invoice
    net = to_decimal(group.taxable_minor, invoice.currency)
    if invoice.currency == _EUR:
        return group.sign * net
    rate = invoice.eur_rate
    if rate is None:
        if invoice.supplied_on is None:
            raise ExchangeRateUnavailableError("a finalized document without a supply date")
        rate = ecb_rate(invoice.currency, invoice.supplied_on)[0]
    return group.sign * (net / rate).quantize(_CENT, ROUND_HALF_UP)


def ec_sales_records(session: Session, *, livemode: bool, quarter: Quarter) -> list[EcSalesRecord]:
    """The reverse-charge supplies of ``quarter`` per document, net in EUR."""
    profile = require_seller_profile(session, livemode=livemode)
    if profile.kleinunternehmer and not profile.kleinunternehmer_reverse_charge_wording:
        return []
    records = []
    buyers: dict[str, str | None] = {}
    for group in _groups(
        session, livemode=livemode, treatment=Treatment.REVERSE_CHARGE, where=_supplied_in(quarter)
    ):
        invoice = group.invoice
        if invoice.supplied_on is None:
            continue
        if invoice.id not in buyers:
            buyers[invoice.id] = stored_snapshot(invoice).buyer.vat_id
        vat_id = buyers[invoice.id]
        if not vat_id:
            continue  # reverse charge is only decided with a valid VAT ID
        records.append(EcSalesRecord(invoice.supplied_on, vat_id, _net_eur(group)))
    return records


def ec_sales_list(session: Session, *, livemode: bool, quarter: Quarter) -> EcSalesList:
    """The EC sales list of ``quarter``."""
    profile = require_seller_profile(session, livemode=livemode)
    records = ec_sales_records(session, livemode=livemode, quarter=quarter)
    try:
        return build_ec_sales_list(records, quarter, seller_country=profile.country)
    except TaxError as exc:
        raise tax_report_failed(exc) from exc


def ec_sales_csv(report: EcSalesList, *, line_ending: str = "\n") -> str:
    """The list as CSV: ``country_code,vat_number,amount,kind`` (whole EUR, kind ``S``),
    the columns of the BZSt ZM form, one line per customer."""
    rows = ["country_code,vat_number,amount,kind"]
    rows += [f"{ln.country_code},{ln.vat_number},{ln.amount},{ln.kind}" for ln in report.lines]
    return line_ending.join(rows) + line_ending


def parse_quarter(text: str) -> Quarter:
    """``2026Q3`` or ``2026-Q3`` (``ValueError`` otherwise)."""
    return Quarter.parse(text)
