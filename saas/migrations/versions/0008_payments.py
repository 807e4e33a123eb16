"""payments: providers, payments and refunds, Stripe customers and inbound events

Tables of `billing.payments.models`: payments (and refunds), the customer credit balance
ledger, per-customer payment provider accounts, per-tenant payment settings (Stripe keys
encrypted at rest) and the inbound Stripe event ids (replays are absorbed by their unique
key). Row-level security as for every tenant-owned table; no `rls.grant_existing` (the
default privileges of 0001 cover new tables).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import saas.kernel.db
from saas.kernel import rls

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = (
    "payment_settings",
    "stripe_events",
    "payment_customers",
    "payments",
    "customer_balance_transactions",
)


def upgrade():
    op.create_table(
        "payment_settings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("stripe_secret_key_encrypted", sa.Text(), nullable=True),
        sa.Column("stripe_webhook_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("stripe_key_last4", sa.String(length=4), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "provider IN ('manual', 'stripe')", name=op.f("ck_payment_settings_provider")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_payment_settings_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_payment_settings")),
        sa.UniqueConstraint(
            "tenant_id", "livemode", name=op.f("uq_payment_settings_tenant_id_livemode")
        ),
    )
    op.create_table(
        "stripe_events",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("received_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('processed', 'ignored')", name=op.f("ck_stripe_events_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_stripe_events_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_stripe_events")),
        sa.UniqueConstraint(
            "tenant_id", "event_id", name=op.f("uq_stripe_events_tenant_id_event_id")
        ),
    )
    op.create_table(
        "payment_customers",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("external_customer_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("setup_intent_id", sa.String(length=255), nullable=True),
        sa.Column("default_payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("card_brand", sa.String(length=32), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "provider IN ('manual', 'stripe')", name=op.f("ck_payment_customers_provider")
        ),
        sa.CheckConstraint(
            "status IN ('setup_pending', 'ready')", name=op.f("ck_payment_customers_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_payment_customers_tenant_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_payment_customers_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_payment_customers")),
        sa.UniqueConstraint(
            "tenant_id",
            "livemode",
            "external_customer_id",
            name=op.f("uq_payment_customers_tenant_id_livemode_external_customer_id"),
        ),
        sa.UniqueConstraint(
            "tenant_id",
            "livemode",
            "provider",
            "customer_id",
            name=op.f("uq_payment_customers_tenant_id_livemode_provider_customer_id"),
        ),
    )
    op.create_table(
        "payments",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("received_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("provider_ref", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("credit_note_id", sa.String(length=40), nullable=True),
        sa.Column("refunded_payment_id", sa.String(length=40), nullable=True),
        sa.Column("needs_refund", sa.Boolean(), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('payment', 'refund')", name=op.f("ck_payments_kind")),
        sa.CheckConstraint("provider IN ('manual', 'stripe')", name=op.f("ck_payments_provider")),
        sa.CheckConstraint(
            "status <> 'succeeded' OR received_at IS NOT NULL", name=op.f("ck_payments_received")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'canceled')",
            name=op.f("ck_payments_status"),
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payments_amount_minor")),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_payments_attempt")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "credit_note_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_payments_tenant_id_credit_note_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_payments_tenant_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_payments_tenant_id_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "refunded_payment_id"],
            ["payments.tenant_id", "payments.id"],
            name=op.f("fk_payments_tenant_id_refunded_payment_id_payments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_payments_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "tenant_id",
            "livemode",
            "idempotency_key",
            name=op.f("uq_payments_tenant_id_livemode_idempotency_key"),
        ),
        sa.UniqueConstraint(
            "tenant_id",
            "livemode",
            "provider_ref",
            name=op.f("uq_payments_tenant_id_livemode_provider_ref"),
        ),
    )
    op.create_index(
        "ix_payments_tenant_id_credit_note_id",
        "payments",
        ["tenant_id", "credit_note_id"],
        unique=False,
    )
    op.create_index(
        "ix_payments_tenant_id_customer_id", "payments", ["tenant_id", "customer_id"], unique=False
    )
    op.create_index(
        "ix_payments_tenant_id_invoice_id", "payments", ["tenant_id", "invoice_id"], unique=False
    )
    op.create_index(
        "ix_payments_tenant_id_received_at", "payments", ["tenant_id", "received_at"], unique=False
    )
    op.create_table(
        "customer_balance_transactions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("payment_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('overpayment', 'applied', 'unallocated')",
            name=op.f("ck_customer_balance_transactions_kind"),
        ),
        sa.CheckConstraint(
            "amount_minor <> 0", name=op.f("ck_customer_balance_transactions_amount_minor")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_customer_balance_transactions_tenant_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_customer_balance_transactions_tenant_id_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "payment_id"],
            ["payments.tenant_id", "payments.id"],
            name=op.f("fk_customer_balance_transactions_tenant_id_payment_id_payments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_customer_balance_transactions_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_customer_balance_transactions")),
    )
    op.create_index(
        "ix_customer_balance_transactions_tenant_id_customer_id",
        "customer_balance_transactions",
        ["tenant_id", "customer_id"],
        unique=False,
    )
    op.create_index(
        "ix_customer_balance_transactions_tenant_id_invoice_id",
        "customer_balance_transactions",
        ["tenant_id", "invoice_id"],
        unique=False,
    )
    for table in TABLES:
        rls.enable_tenant_rls(op, table)


def downgrade():
    for table in TABLES:
        rls.disable_tenant_rls(op, table)
    op.drop_index(
        "ix_customer_balance_transactions_tenant_id_invoice_id",
        table_name="customer_balance_transactions",
    )
    op.drop_index(
        "ix_customer_balance_transactions_tenant_id_customer_id",
        table_name="customer_balance_transactions",
    )
    op.drop_table("customer_balance_transactions")
    op.drop_index("ix_payments_tenant_id_received_at", table_name="payments")
    op.drop_index("ix_payments_tenant_id_invoice_id", table_name="payments")
    op.drop_index("ix_payments_tenant_id_customer_id", table_name="payments")
    op.drop_index("ix_payments_tenant_id_credit_note_id", table_name="payments")
    op.drop_table("payments")
    op.drop_table("payment_customers")
    op.drop_table("stripe_events")
    op.drop_table("payment_settings")
