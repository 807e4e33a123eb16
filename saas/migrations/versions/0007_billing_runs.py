"""billing runs: the run table, the exactly-once key on invoices, charge → invoice links

``invoices`` gains ``subscription_id``, ``period_start_on`` and ``billing_run_id``; the
unique key ``(tenant_id, subscription_id, period_start_on)`` makes a subscription period
invoiced at most once (manual invoices leave both NULL, and NULLs never collide). The
immutability trigger of 0005 compares every column not in its mutable list, so the new
columns are frozen with the rest of a finalized invoice without changing the trigger.

``subscription_charges.invoice_id`` says which invoice billed a charge; a partial index
over the pending charges (``invoiced_at IS NULL``) is what a billing run scans.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import saas.kernel.db
from saas.kernel import rls

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "billing_runs",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("test_clock_id", sa.String(length=40), nullable=True),
        sa.Column("at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("subscriptions_advanced", sa.Integer(), nullable=False),
        sa.Column("invoices_finalized", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("batches_done", sa.Integer(), nullable=False),
        sa.Column("batches_total", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed')",
            name=op.f("ck_billing_runs_status"),
        ),
        sa.CheckConstraint(
            "trigger IN ('cli', 'worker', 'test_clock', 'api')",
            name=op.f("ck_billing_runs_trigger"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "test_clock_id"],
            ["test_clocks.tenant_id", "test_clocks.id"],
            name=op.f("fk_billing_runs_tenant_id_test_clock_id_test_clocks"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_billing_runs_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_billing_runs")),
    )
    with op.batch_alter_table("billing_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_billing_runs_tenant_id_created_at", ["tenant_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_billing_runs_tenant_id_group_id", ["tenant_id", "group_id"], unique=False
        )

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subscription_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("period_start_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("billing_run_id", sa.String(length=40), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_invoices_tenant_id_subscription_id_period_start_on"),
            ["tenant_id", "subscription_id", "period_start_on"],
        )
        batch_op.create_index(
            "ix_invoices_tenant_id_billing_run_id", ["tenant_id", "billing_run_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_invoices_tenant_id_subscription_id_subscriptions"),
            "subscriptions",
            ["tenant_id", "subscription_id"],
            ["tenant_id", "id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_invoices_tenant_id_billing_run_id_billing_runs"),
            "billing_runs",
            ["tenant_id", "billing_run_id"],
            ["tenant_id", "id"],
        )

    with op.batch_alter_table("subscription_charges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invoice_id", sa.String(length=40), nullable=True))
        batch_op.create_index(
            "ix_subscription_charges_tenant_id_invoice_id",
            ["tenant_id", "invoice_id"],
            unique=False,
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_subscription_charges_tenant_id_invoice_id_invoices"),
            "invoices",
            ["tenant_id", "invoice_id"],
            ["tenant_id", "id"],
        )

    # What a run scans: the pending charges. Partial, so it stays as small as the backlog.
    op.create_index(
        "ix_subscription_charges_pending",
        "subscription_charges",
        ["tenant_id", "subscription_id", "starts_on"],
        unique=False,
        postgresql_where=sa.text("invoiced_at IS NULL"),
        sqlite_where=sa.text("invoiced_at IS NULL"),
    )
    rls.enable_tenant_rls(op, "billing_runs")


def downgrade():
    op.drop_index("ix_subscription_charges_pending", table_name="subscription_charges")
    with op.batch_alter_table("subscription_charges", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_subscription_charges_tenant_id_invoice_id_invoices"), type_="foreignkey"
        )
        batch_op.drop_index("ix_subscription_charges_tenant_id_invoice_id")
        batch_op.drop_column("invoice_id")

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_invoices_tenant_id_billing_run_id_billing_runs"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_invoices_tenant_id_subscription_id_subscriptions"), type_="foreignkey"
        )
        batch_op.drop_index("ix_invoices_tenant_id_billing_run_id")
        batch_op.drop_constraint(
            batch_op.f("uq_invoices_tenant_id_subscription_id_period_start_on"), type_="unique"
        )
        batch_op.drop_column("billing_run_id")
        batch_op.drop_column("period_start_on")
        batch_op.drop_column("subscription_id")

    with op.batch_alter_table("billing_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_billing_runs_tenant_id_group_id")
        batch_op.drop_index("ix_billing_runs_tenant_id_created_at")

    op.drop_table("billing_runs")
