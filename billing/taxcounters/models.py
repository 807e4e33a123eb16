"""Tax counter tables: the ledger of finalized documents as the counters see them, and the
threshold warnings already sent.

* ``tax_ledger_entries``: one row per finalized invoice or credit note (credit notes
  negative), written in the document's own transaction. It holds what the tax counters
  need and the document itself no longer says in a queryable form: the EUR net of its lines
  that count toward the § 19 Gesamtumsatz, the Art. 59c cross-border B2C total and the
  § 19a Union turnover (:func:`billing.taxcounters.rules.flags_for`), each converted line
  by line at the ECB rate of the supply date, as the tax engine converted them. ``year`` is
  the calendar year the entry belongs to: the supply year of an invoice, the issue year of
  a credit note (§ 17 Abs. 1 UStG: a change of the consideration is booked when it
  happens). Rows are never changed.
* ``tax_threshold_warnings``: the warnings sent, one per tenant, mode, year, threshold and
  kind (``approaching`` / ``crossed``); the unique key is what makes a warning go out once
  even when two transactions cross a threshold at the same time.

Amounts are EUR cents except ``gross_minor`` and ``turnover_minor`` (document currency).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
ENTRY_KINDS = (INVOICE, CREDIT_NOTE)

APPROACHING = "approaching"
CROSSED = "crossed"
WARNING_KINDS = (APPROACHING, CROSSED)


class TaxLedgerEntry(TenantOwned, HasLivemode, Base):
    __tablename__ = "tax_ledger_entries"
    __table_args__ = (
        # an entry goes with its document when that is deleted after the retention period
        sa.ForeignKeyConstraint(
            ["tenant_id", "document_id"],
            ["invoices.tenant_id", "invoices.id"],
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"], ondelete="CASCADE"
        ),
        # also the index of the received-turnover join (payment.invoice_id = document_id)
        sa.UniqueConstraint("tenant_id", "document_id"),
        sa.CheckConstraint(f"kind IN {ENTRY_KINDS!r}", name="kind"),
        # the counters sum a tenant's mode and year: this index answers them alone
        sa.Index("ix_tax_ledger_entries_tenant_id_livemode_year", "tenant_id", "livemode", "year"),
        # the foreign key's index: deleting invoices after their retention must not scan
        sa.Index("ix_tax_ledger_entries_tenant_id_invoice_id", "tenant_id", "invoice_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # txl_…
    document_id: Mapped[str] = mapped_column(sa.String(40))  # the invoice or credit note
    invoice_id: Mapped[str] = mapped_column(sa.String(40))  # the invoice (corrected one)
    kind: Mapped[str] = mapped_column(sa.String(16))
    year: Mapped[int] = mapped_column(sa.Integer())
    booked_on: Mapped[date] = mapped_column(sa.Date())
    currency: Mapped[str] = mapped_column(sa.String(3))
    gross_minor: Mapped[int] = mapped_column(sa.BigInteger())
    turnover_minor: Mapped[int] = mapped_column(sa.BigInteger())
    turnover_eur_minor: Mapped[int] = mapped_column(sa.BigInteger())
    eu_b2c_eur_minor: Mapped[int] = mapped_column(sa.BigInteger())
    union_eur_minor: Mapped[int] = mapped_column(sa.BigInteger())
    # the buyer was a consumer in another member state (Art. 59c): credit notes need it
    cross_border_consumer: Mapped[bool] = mapped_column(sa.Boolean())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TaxThresholdWarning(TenantOwned, HasLivemode, Base):
    __tablename__ = "tax_threshold_warnings"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "livemode", "year", "threshold", "kind"),
        sa.CheckConstraint(f"kind IN {WARNING_KINDS!r}", name="kind"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # ttw_…
    year: Mapped[int] = mapped_column(sa.Integer())
    threshold: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(16))
    value_eur_minor: Mapped[int] = mapped_column(sa.BigInteger())  # the counter then
    limit_eur_minor: Mapped[int] = mapped_column(sa.BigInteger())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
