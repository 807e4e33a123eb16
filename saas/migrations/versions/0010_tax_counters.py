"""tax counters: the per-year ledger behind §19/§19a/Art. 59c and threshold warnings

``tax_ledger_entries`` holds one row per finalized invoice or credit note with the EUR
amounts the counters sum (``billing.taxcounters``); its index ``(tenant_id, livemode,
year)`` answers the counters, the unique key ``(tenant_id, document_id)`` the join from
received payments, ``(tenant_id, invoice_id)`` the foreign key to the corrected invoice.
``tax_threshold_warnings`` makes each warning go out once (unique key). Both tables are
append-only in practice; row-level security as for every tenant-owned table.

Documents finalized before this revision have no ledger entry: the counters start with the
entered figures of the seller profile (see docs/tax.md, "Tax counters").

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import saas.kernel.db
from saas.kernel import rls

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("tax_ledger_entries", "tax_threshold_warnings")


def upgrade():
    op.create_table(
        "tax_ledger_entries",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("turnover_minor", sa.BigInteger(), nullable=False),
        sa.Column("turnover_eur_minor", sa.BigInteger(), nullable=False),
        sa.Column("eu_b2c_eur_minor", sa.BigInteger(), nullable=False),
        sa.Column("union_eur_minor", sa.BigInteger(), nullable=False),
        sa.Column("cross_border_consumer", sa.Boolean(), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('invoice', 'credit_note')", name=op.f("ck_tax_ledger_entries_kind")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "document_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_tax_ledger_entries_tenant_id_document_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_tax_ledger_entries_tenant_id_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tax_ledger_entries_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_tax_ledger_entries")),
        sa.UniqueConstraint(
            "tenant_id", "document_id", name=op.f("uq_tax_ledger_entries_tenant_id_document_id")
        ),
    )
    with op.batch_alter_table("tax_ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tax_ledger_entries_tenant_id_livemode_year",
            ["tenant_id", "livemode", "year"],
            unique=False,
        )
        batch_op.create_index(
            "ix_tax_ledger_entries_tenant_id_invoice_id", ["tenant_id", "invoice_id"], unique=False
        )

    op.create_table(
        "tax_threshold_warnings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value_eur_minor", sa.BigInteger(), nullable=False),
        sa.Column("limit_eur_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('approaching', 'crossed')", name=op.f("ck_tax_threshold_warnings_kind")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tax_threshold_warnings_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_tax_threshold_warnings")),
        sa.UniqueConstraint(
            "tenant_id",
            "livemode",
            "year",
            "threshold",
            "kind",
            name=op.f("uq_tax_threshold_warnings_tenant_id_livemode_year_threshold_kind"),
        ),
    )
    for table in TABLES:
        rls.enable_tenant_rls(op, table)


def downgrade():
    for table in TABLES:
        rls.disable_tenant_rls(op, table)
    op.drop_table("tax_threshold_warnings")
    with op.batch_alter_table("tax_ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_tax_ledger_entries_tenant_id_invoice_id")
        batch_op.drop_index("ix_tax_ledger_entries_tenant_id_livemode_year")
    op.drop_table("tax_ledger_entries")
