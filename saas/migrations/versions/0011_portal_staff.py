"""portal and dashboard: portal links and sessions, staff accounts with TOTP

Branding (logo, accent colour) is not repeated here: the seller profile has both since 0005
and the invoices print them; the portal reads the same columns.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import saas.kernel.db
from saas.kernel import rls

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = (
    "portal_links",
    "portal_sessions",
    "cancellation_reasons",
    "staff_accounts",
    "staff_sessions",
)


def _tenant_fk(table):
    return sa.ForeignKeyConstraint(
        ["tenant_id"],
        ["tenants.id"],
        name=op.f(f"fk_{table}_tenant_id_tenants"),
        ondelete="RESTRICT",
    )


def _customer_fk(table):
    return sa.ForeignKeyConstraint(
        ["tenant_id", "customer_id"],
        ["customers.tenant_id", "customers.id"],
        name=op.f(f"fk_{table}_tenant_id_customer_id_customers"),
    )


def upgrade():
    op.create_table(
        "portal_links",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("return_url", sa.String(length=2000), nullable=True),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        _customer_fk("portal_links"),
        _tenant_fk("portal_links"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_portal_links")),
        sa.UniqueConstraint(
            "tenant_id", "token_hash", name=op.f("uq_portal_links_tenant_id_token_hash")
        ),
    )
    op.create_table(
        "portal_sessions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("link_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("return_url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        _customer_fk("portal_sessions"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "link_id"],
            ["portal_links.tenant_id", "portal_links.id"],
            name=op.f("fk_portal_sessions_tenant_id_link_id_portal_links"),
        ),
        _tenant_fk("portal_sessions"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_portal_sessions")),
        sa.UniqueConstraint(
            "tenant_id", "secret_hash", name=op.f("uq_portal_sessions_tenant_id_secret_hash")
        ),
    )
    op.create_table(
        "cancellation_reasons",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "reason IN ('too_expensive', 'missing_features', 'switched_service', 'unused', "
            "'customer_service', 'other')",
            name=op.f("ck_cancellation_reasons_reason"),
        ),
        _customer_fk("cancellation_reasons"),
        _tenant_fk("cancellation_reasons"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_cancellation_reasons")),
    )
    op.create_table(
        "staff_accounts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("totp_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'read_only')", name=op.f("ck_staff_accounts_role")
        ),
        _tenant_fk("staff_accounts"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_staff_accounts")),
        sa.UniqueConstraint("tenant_id", "email", name=op.f("uq_staff_accounts_tenant_id_email")),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("staff_id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "staff_id"],
            ["staff_accounts.tenant_id", "staff_accounts.id"],
            name=op.f("fk_staff_sessions_tenant_id_staff_id_staff_accounts"),
        ),
        _tenant_fk("staff_sessions"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint(
            "tenant_id", "secret_hash", name=op.f("uq_staff_sessions_tenant_id_secret_hash")
        ),
    )
    for table in TABLES:
        rls.enable_tenant_rls(op, table)


def downgrade():
    for table in reversed(TABLES):
        rls.disable_tenant_rls(op, table)
        op.drop_table(table)
