"""dunning and mail: per-tenant dunning settings, retry schedule, the e-mail outbox; consents

Tables: dunning_settings, dunning_cases, dunning_attempts (billing.dunning), mail_outbox
(saas.mail), consents (saas.consents, GDPR issue 8).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import saas.kernel.db
from saas.kernel import rls

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("dunning_settings", "consents", "mail_outbox", "dunning_cases", "dunning_attempts")


def upgrade():
    op.create_table(
        "dunning_settings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("retry_days", sa.JSON(), nullable=False),
        sa.Column("final_action", sa.String(length=32), nullable=False),
        sa.Column("send_reminders", sa.Boolean(), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "final_action IN ('cancel', 'mark_uncollectible')",
            name=op.f("ck_dunning_settings_final_action"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dunning_settings_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_dunning_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_dunning_settings_tenant_id")),
    )
    op.create_table(
        "consents",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("text_version", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("given_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawal_source", sa.String(length=32), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_consents_tenant_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_consents_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consents_tenant_id_customer_id", ["tenant_id", "customer_id"], unique=False
        )
        batch_op.create_index(
            "uq_consents_active_purpose",
            ["tenant_id", "customer_id", "purpose"],
            unique=True,
            postgresql_where=sa.text("withdrawn_at IS NULL"),
            sqlite_where=sa.text("withdrawn_at IS NULL"),
        )

    op.create_table(
        "mail_outbox",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("reference_id", sa.String(length=40), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("sent_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed')", name=op.f("ck_mail_outbox_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_mail_outbox_tenant_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_mail_outbox_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_mail_outbox")),
        sa.UniqueConstraint(
            "tenant_id", "message_id", name=op.f("uq_mail_outbox_tenant_id_message_id")
        ),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mail_outbox_tenant_id_customer_id", ["tenant_id", "customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_mail_outbox_tenant_id_status_next_attempt_at",
            ["tenant_id", "status", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "dunning_cases",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("retry_days", sa.JSON(), nullable=False),
        sa.Column("first_failed_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_code", sa.String(length=64), nullable=True),
        sa.Column("last_failure_message", sa.String(length=500), nullable=True),
        sa.Column("final_action", sa.String(length=32), nullable=True),
        sa.Column("closed_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "final_action IS NULL OR final_action IN ('cancel', 'mark_uncollectible')",
            name=op.f("ck_dunning_cases_final_action"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'recovered', 'exhausted', 'closed')",
            name=op.f("ck_dunning_cases_status"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_dunning_cases_tenant_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_dunning_cases_tenant_id_invoice_id_invoices"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subscription_id"],
            ["subscriptions.tenant_id", "subscriptions.id"],
            name=op.f("fk_dunning_cases_tenant_id_subscription_id_subscriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dunning_cases_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_dunning_cases")),
        sa.UniqueConstraint(
            "tenant_id", "invoice_id", name=op.f("uq_dunning_cases_tenant_id_invoice_id")
        ),
    )
    with op.batch_alter_table("dunning_cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dunning_cases_tenant_id_customer_id", ["tenant_id", "customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_dunning_cases_tenant_id_status", ["tenant_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_dunning_cases_tenant_id_subscription_id",
            ["tenant_id", "subscription_id"],
            unique=False,
        )

    op.create_table(
        "dunning_attempts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("test_clock_id", sa.String(length=40), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempted_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome_code", sa.String(length=64), nullable=True),
        sa.Column("outcome_message", sa.String(length=500), nullable=True),
        sa.Column("deferrals", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'running', 'pending', 'succeeded', 'failed', 'canceled')",
            name=op.f("ck_dunning_attempts_status"),
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_dunning_attempts_seq")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "case_id"],
            ["dunning_cases.tenant_id", "dunning_cases.id"],
            name=op.f("fk_dunning_attempts_tenant_id_case_id_dunning_cases"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "test_clock_id"],
            ["test_clocks.tenant_id", "test_clocks.id"],
            name=op.f("fk_dunning_attempts_tenant_id_test_clock_id_test_clocks"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dunning_attempts_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_dunning_attempts")),
        sa.UniqueConstraint(
            "tenant_id", "case_id", "seq", name=op.f("uq_dunning_attempts_tenant_id_case_id_seq")
        ),
    )
    with op.batch_alter_table("dunning_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dunning_attempts_tenant_id_status_scheduled_at",
            ["tenant_id", "status", "scheduled_at"],
            unique=False,
        )

    for table in TABLES:
        rls.enable_tenant_rls(op, table)


def downgrade():
    for table in reversed(TABLES):
        op.drop_table(table)
