"""Invoice tables: invoices and credit notes, their lines, their VAT groups, the rendered
documents, and the number counters with the log of skipped numbers.

An invoice is a draft until it is finalized; then its content is frozen (GoBD, § 146 Abs. 4
AO): the canonical snapshot JSON, its SHA-256, the number, the dates, the totals, the lines
and the VAT groups never change again. Only the status and payment columns in
:data:`MUTABLE_AFTER_FINALIZATION` may. Corrections are new documents (credit notes, rows of
the same table with ``kind = 'credit_note'``). Two walls keep it so:

* the ORM: :mod:`billing.invoices.immutability` refuses such changes in ``before_flush``
  (and bulk UPDATE/DELETE statements on these tables);
* PostgreSQL: triggers of migration 0005 refuse them for every role, including the owner.

Money is integer minor units of the invoice currency; the VAT groups carry the EUR amount
of their VAT for non-EUR invoices (Art. 230 VAT Directive). VAT rates are stored as basis
points (19 % = 1900) so that they are exact integers on every backend.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

# kinds
INVOICE = "invoice"
SMALL_AMOUNT = "small_amount"  # § 33 UStDV
CREDIT_NOTE = "credit_note"
KINDS = (INVOICE, SMALL_AMOUNT, CREDIT_NOTE)
INVOICE_KINDS = (INVOICE, SMALL_AMOUNT)

# statuses: invoices go draft → open → paid / uncollectible / void; credit notes are issued
DRAFT = "draft"
OPEN = "open"
PAID = "paid"
UNCOLLECTIBLE = "uncollectible"
VOID = "void"
ISSUED = "issued"
STATUSES = (DRAFT, OPEN, PAID, UNCOLLECTIBLE, VOID, ISSUED)

CANCELLATION = "cancellation"  # Stornorechnung: everything that was left
CORRECTION = "correction"  # Rechnungskorrektur: part of it
CREDIT_NOTE_TYPES = (CANCELLATION, CORRECTION)

DOCUMENT_FORMATS = ("pdf", "xml")
SERIES = ("invoice", "credit_note")

# Columns of `invoices` that may still change once the invoice is finalized.
MUTABLE_AFTER_FINALIZATION = frozenset(
    {
        "status",
        "paid_at",
        "payment_note",
        "voided_at",
        "uncollectible_at",
        "credited_net_minor",
        "credited_gross_minor",
        "updated_at",
        "version",
    }
)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as text: SQLite has no decimal type and binary floats are not
    money. Values are normalised (``1.50`` → ``1.5``)."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"DecimalText takes Decimal, not {type(value).__name__}")
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


def _fk(columns: list[str], table: str, *, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", *columns],
        [f"{table}.tenant_id", f"{table}.id"],
        ondelete=ondelete,
    )


class Invoice(TenantOwned, HasLivemode, Base):
    """An invoice, a § 33 UStDV small-amount invoice or a credit note.

    ``snapshot_json`` is :func:`billing.documents.canonical_json` of the frozen snapshot and
    ``content_sha256`` its hash; the total columns repeat its totals for queries.
    ``retention_ends_on`` is the last day the invoice must be kept (§ 147 AO, § 14b UStG).
    ``version`` is an optimistic lock: two concurrent changes cannot both win.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        _fk(["customer_id"], "customers"),
        _fk(["corrects_invoice_id"], "invoices"),
        _fk(["subscription_id"], "subscriptions"),
        _fk(["billing_run_id"], "billing_runs"),
        sa.UniqueConstraint("tenant_id", "number"),
        # exactly once per subscription period (billing runs); manual invoices leave both
        # columns NULL, and NULLs never collide in a UNIQUE on SQLite or PostgreSQL
        sa.UniqueConstraint("tenant_id", "subscription_id", "period_start_on"),
        sa.CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        sa.CheckConstraint(
            f"credit_note_type IS NULL OR credit_note_type IN {CREDIT_NOTE_TYPES!r}",
            name="credit_note_type",
        ),
        sa.CheckConstraint(
            "(kind = 'credit_note') = (corrects_invoice_id IS NOT NULL)", name="credit_note_ref"
        ),
        sa.CheckConstraint(
            "status = 'draft' OR (number IS NOT NULL AND snapshot_json IS NOT NULL "
            "AND content_sha256 IS NOT NULL AND issued_on IS NOT NULL "
            "AND retention_ends_on IS NOT NULL)",
            name="finalized_content",
        ),
        sa.Index("ix_invoices_tenant_id_customer_id", "tenant_id", "customer_id"),
        sa.Index("ix_invoices_tenant_id_status", "tenant_id", "status"),
        sa.Index("ix_invoices_tenant_id_issued_on", "tenant_id", "issued_on"),
        sa.Index("ix_invoices_tenant_id_corrects_invoice_id", "tenant_id", "corrects_invoice_id"),
        sa.Index("ix_invoices_tenant_id_retention_ends_on", "tenant_id", "retention_ends_on"),
        sa.Index("ix_invoices_tenant_id_billing_run_id", "tenant_id", "billing_run_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    currency: Mapped[str] = mapped_column(sa.String(3))
    language: Mapped[str] = mapped_column(sa.String(2))
    supplied_on: Mapped[date | None] = mapped_column(sa.Date())  # tax point; default issue day
    buyer_reference: Mapped[str | None] = mapped_column(  # EN 16931 BT-10
        sa.String(200), info={"personal_data": True}
    )
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", sa.JSON(), default=dict, info={"personal_data": True}
    )
    # credit notes
    corrects_invoice_id: Mapped[str | None] = mapped_column(sa.String(40))
    credit_note_type: Mapped[str | None] = mapped_column(sa.String(16))
    credit_note_reason: Mapped[str | None] = mapped_column(sa.String(500))
    # subscription invoices (billing runs): set with the draft, frozen with the invoice
    subscription_id: Mapped[str | None] = mapped_column(sa.String(40))
    period_start_on: Mapped[date | None] = mapped_column(sa.Date())
    billing_run_id: Mapped[str | None] = mapped_column(sa.String(40))
    # set once, at finalization (frozen afterwards)
    number: Mapped[str | None] = mapped_column(sa.String(64))
    number_series: Mapped[str | None] = mapped_column(sa.String(16))
    issued_on: Mapped[date | None] = mapped_column(sa.Date())
    due_on: Mapped[date | None] = mapped_column(sa.Date())
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    snapshot_json: Mapped[bytes | None] = mapped_column(
        sa.LargeBinary(), info={"personal_data": True}
    )
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    net_minor: Mapped[int | None] = mapped_column(sa.BigInteger())
    vat_minor: Mapped[int | None] = mapped_column(sa.BigInteger())
    gross_minor: Mapped[int | None] = mapped_column(sa.BigInteger())
    vat_eur_minor: Mapped[int | None] = mapped_column(sa.BigInteger())  # non-EUR with VAT
    eur_rate: Mapped[Decimal | None] = mapped_column(DecimalText())  # units per 1 EUR (ECB)
    eur_rate_on: Mapped[date | None] = mapped_column(sa.Date())
    oss_reportable: Mapped[bool | None] = mapped_column(sa.Boolean())
    retention_ends_on: Mapped[date | None] = mapped_column(sa.Date())
    # may change after finalization (MUTABLE_AFTER_FINALIZATION)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payment_note: Mapped[str | None] = mapped_column(sa.String(500), info={"personal_data": True})
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    uncollectible_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    credited_net_minor: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    credited_gross_minor: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(sa.Integer())

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice",
        order_by="InvoiceLine.position",
        cascade="all, delete-orphan",
    )
    tax_groups: Mapped[list[InvoiceTaxGroup]] = relationship(
        order_by="InvoiceTaxGroup.position",
        cascade="all, delete-orphan",
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy's API)

    @property
    def is_finalized(self) -> bool:
        return self.status != DRAFT


class InvoiceLine(TenantOwned, HasLivemode, Base):
    """One line: ``quantity`` × ``unit_amount`` (net, minor units) = ``net_minor`` rounded
    half-up. The tax columns are filled at finalization from the line's tax decision (for a
    credit note, copied from the corrected line). ``period_end_on`` is inclusive."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        _fk(["invoice_id"], "invoices", ondelete="CASCADE"),
        _fk(["corrects_line_id"], "invoice_lines"),
        sa.UniqueConstraint("tenant_id", "invoice_id", "position"),
        sa.CheckConstraint("unit_amount >= 0", name="unit_amount"),
        sa.CheckConstraint(
            "period_start_on IS NULL OR period_end_on >= period_start_on", name="period"
        ),
        sa.Index("ix_invoice_lines_tenant_id_corrects_line_id", "tenant_id", "corrects_line_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(sa.String(40))
    position: Mapped[int] = mapped_column(sa.Integer())
    description: Mapped[str] = mapped_column(sa.String(500), info={"personal_data": True})
    quantity: Mapped[Decimal] = mapped_column(DecimalText())
    unit_amount: Mapped[int] = mapped_column(sa.BigInteger())
    unit_code: Mapped[str] = mapped_column(sa.String(3), default="C62")
    net_minor: Mapped[int] = mapped_column(sa.BigInteger())
    period_start_on: Mapped[date | None] = mapped_column(sa.Date())
    period_end_on: Mapped[date | None] = mapped_column(sa.Date())
    corrects_line_id: Mapped[str | None] = mapped_column(sa.String(40))  # credit note lines
    # the tax decision, set at finalization
    tax_treatment: Mapped[str | None] = mapped_column(sa.String(32))
    tax_category: Mapped[str | None] = mapped_column(sa.String(2))
    tax_rate_bp: Mapped[int | None] = mapped_column(sa.Integer())
    taxing_country: Mapped[str | None] = mapped_column(sa.String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class InvoiceTaxGroup(TenantOwned, HasLivemode, Base):
    """The VAT of one (category, rate) of a finalized document (EN 16931 BG-23), as in its
    snapshot: VAT on the summed line nets (BR-CO-17). ``taxing_country`` is set when every
    line of the group is taxed by the same member state (OSS reports group by it)."""

    __tablename__ = "invoice_tax_groups"
    __table_args__ = (
        _fk(["invoice_id"], "invoices", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "invoice_id", "position"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(sa.String(40))
    position: Mapped[int] = mapped_column(sa.Integer())
    category: Mapped[str] = mapped_column(sa.String(2))
    rate_bp: Mapped[int] = mapped_column(sa.Integer())
    treatment: Mapped[str] = mapped_column(sa.String(32))
    taxing_country: Mapped[str | None] = mapped_column(sa.String(2))
    taxable_minor: Mapped[int] = mapped_column(sa.BigInteger())
    vat_minor: Mapped[int] = mapped_column(sa.BigInteger())
    vat_eur_minor: Mapped[int | None] = mapped_column(sa.BigInteger())
    exemption_reason_code: Mapped[str | None] = mapped_column(sa.String(32))
    exemption_reason: Mapped[str | None] = mapped_column(sa.String(500))


class InvoiceDocument(TenantOwned, HasLivemode, Base):
    """A rendered document of a finalized invoice: the PDF/A-3 (with the XML embedded) or the
    EN 16931 CII XML, byte for byte as served, with its SHA-256 and the snapshot hash it was
    rendered from. Written once (by the worker or the first download), never updated."""

    __tablename__ = "invoice_documents"
    __table_args__ = (
        _fk(["invoice_id"], "invoices", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "invoice_id", "format"),
        sa.CheckConstraint(f"format IN {DOCUMENT_FORMATS!r}", name="format"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(sa.String(40))
    format: Mapped[str] = mapped_column(sa.String(8))
    media_type: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary(), info={"personal_data": True})
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size_bytes: Mapped[int] = mapped_column(sa.Integer())
    snapshot_sha256: Mapped[str] = mapped_column(sa.String(64))
    renderer: Mapped[str] = mapped_column(sa.String(200))
    rendered_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InvoiceNumberCounter(TenantOwned, HasLivemode, Base):
    """The last number given in one bucket of a series (:mod:`billing.numbering`). Finalization
    locks the row (``SELECT … FOR UPDATE``; SQLite has one writer) and increments it in the
    invoice's own transaction, so a rolled-back finalization gives its number back."""

    __tablename__ = "invoice_number_counters"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "livemode", "series", "bucket"),
        sa.CheckConstraint(f"series IN {SERIES!r}", name="series"),
        sa.CheckConstraint("last_seq >= 0", name="last_seq"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    series: Mapped[str] = mapped_column(sa.String(16))
    bucket: Mapped[str] = mapped_column(sa.String(80))
    last_seq: Mapped[int] = mapped_column(sa.Integer(), default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InvoiceNumberSkip(TenantOwned, HasLivemode, Base):
    """A number of a series that no document carries, and why (UStAE 14.5 Abs. 10: gaps are
    allowed, but an unexplained gap invites an estimate in an audit, BFH X B 79/16)."""

    __tablename__ = "invoice_number_skips"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "livemode", "series", "bucket", "seq"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    series: Mapped[str] = mapped_column(sa.String(16))
    bucket: Mapped[str] = mapped_column(sa.String(80))
    seq: Mapped[int] = mapped_column(sa.Integer())
    number: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[str] = mapped_column(sa.String(500))
    actor: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
