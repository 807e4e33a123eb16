"""invoices, credit notes, their documents and numbering; seller profiles; customer VAT ID checks

Row-level security as for every tenant-owned table. No `rls.grant_existing`: the default
privileges of 0001 grant the app role on new tables, and re-granting everything would give
UPDATE/DELETE on the append-only `subscription_history` back.

On PostgreSQL, triggers make finalized invoices unalterable for every role (GoBD, § 146
Abs. 4 AO; the ORM guard in `billing.invoices.immutability` is the first wall):
- `invoices`: once the status is no longer `draft`, an UPDATE may change only the status
  and payment columns (everything else is compared as JSON, so a column added later is
  frozen by default) and never go back to `draft`; a DELETE is refused until
  `retention_ends_on` has passed;
- `invoice_lines`, `invoice_tax_groups`: no UPDATE, and no DELETE before the retention end,
  while their invoice is finalized;
- `invoice_documents`, `invoice_number_skips`: never updated; skips never deleted.
The errors are SQLSTATE 23000 (integrity_constraint_violation).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 18:10:11.990037

"""

import sqlalchemy as sa
from alembic import op

import saas.kernel.db
from saas.kernel import rls

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = (
    "seller_profiles",
    "invoices",
    "invoice_lines",
    "invoice_tax_groups",
    "invoice_documents",
    "invoice_number_counters",
    "invoice_number_skips",
)

# the columns of `invoices` that may change after finalization
# (billing.invoices.models.MUTABLE_AFTER_FINALIZATION)
MUTABLE = (
    "status",
    "paid_at",
    "payment_note",
    "voided_at",
    "uncollectible_at",
    "credited_net_minor",
    "credited_gross_minor",
    "updated_at",
    "version",
)
_MUTABLE_ARRAY = "ARRAY[" + ", ".join(f"'{c}'" for c in MUTABLE) + "]"

TRIGGERS_UP = """
CREATE FUNCTION abowerk_guard_finalized_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' AND OLD.retention_ends_on >= current_date THEN
            RAISE EXCEPTION 'invoice % is finalized and must be kept until %',
                OLD.id, OLD.retention_ends_on USING ERRCODE = '23000';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.status = 'draft'
        OR (to_jsonb(NEW) - MUTABLE_COLUMNS) IS DISTINCT FROM (to_jsonb(OLD) - MUTABLE_COLUMNS)
    ) THEN
        RAISE EXCEPTION 'invoice % is finalized: only its status and payment columns may change',
            OLD.id USING ERRCODE = '23000';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER invoices_guard_finalized BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION abowerk_guard_finalized_invoice();

CREATE FUNCTION abowerk_guard_finalized_invoice_part() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_status text;
    parent_retention date;
BEGIN
    SELECT status, retention_ends_on INTO parent_status, parent_retention
        FROM invoices WHERE tenant_id = OLD.tenant_id AND id = OLD.invoice_id;
    IF FOUND AND parent_status <> 'draft'
            AND (TG_OP = 'UPDATE' OR parent_retention >= current_date) THEN
        RAISE EXCEPTION '% of invoice % cannot change: the invoice is finalized',
            TG_TABLE_NAME, OLD.invoice_id USING ERRCODE = '23000';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER invoice_lines_guard_finalized BEFORE UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION abowerk_guard_finalized_invoice_part();
CREATE TRIGGER invoice_tax_groups_guard_finalized BEFORE UPDATE OR DELETE ON invoice_tax_groups
    FOR EACH ROW EXECUTE FUNCTION abowerk_guard_finalized_invoice_part();

CREATE FUNCTION abowerk_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never changed (%)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = '23000';
END
$$;

CREATE TRIGGER invoice_documents_no_update BEFORE UPDATE ON invoice_documents
    FOR EACH ROW EXECUTE FUNCTION abowerk_refuse_change();
CREATE TRIGGER invoice_number_skips_append_only BEFORE UPDATE OR DELETE ON invoice_number_skips
    FOR EACH ROW EXECUTE FUNCTION abowerk_refuse_change();
""".replace("MUTABLE_COLUMNS", _MUTABLE_ARRAY)

TRIGGERS_DOWN = """
DROP TRIGGER IF EXISTS invoice_number_skips_append_only ON invoice_number_skips;
DROP TRIGGER IF EXISTS invoice_documents_no_update ON invoice_documents;
DROP TRIGGER IF EXISTS invoice_tax_groups_guard_finalized ON invoice_tax_groups;
DROP TRIGGER IF EXISTS invoice_lines_guard_finalized ON invoice_lines;
DROP TRIGGER IF EXISTS invoices_guard_finalized ON invoices;
DROP FUNCTION IF EXISTS abowerk_refuse_change();
DROP FUNCTION IF EXISTS abowerk_guard_finalized_invoice_part();
DROP FUNCTION IF EXISTS abowerk_guard_finalized_invoice();
"""


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "invoice_number_counters",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("series", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.String(length=80), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "series IN ('invoice', 'credit_note')", name=op.f("ck_invoice_number_counters_series")
        ),
        sa.CheckConstraint("last_seq >= 0", name=op.f("ck_invoice_number_counters_last_seq")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invoice_number_counters_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoice_number_counters")),
        sa.UniqueConstraint(
            "tenant_id",
            "livemode",
            "series",
            "bucket",
            name=op.f("uq_invoice_number_counters_tenant_id_livemode_series_bucket"),
        ),
    )
    op.create_table(
        "invoice_number_skips",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("series", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.String(length=80), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invoice_number_skips_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoice_number_skips")),
        sa.UniqueConstraint(
            "tenant_id",
            "livemode",
            "series",
            "bucket",
            "seq",
            name=op.f("uq_invoice_number_skips_tenant_id_livemode_series_bucket_seq"),
        ),
    )
    op.create_table(
        "seller_profiles",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("address_line1", sa.String(length=200), nullable=True),
        sa.Column("address_line2", sa.String(length=200), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("tax_number", sa.String(length=32), nullable=True),
        sa.Column("vat_id", sa.String(length=32), nullable=True),
        sa.Column("legal_registration_id", sa.String(length=200), nullable=True),
        sa.Column("contact_name", sa.String(length=200), nullable=True),
        sa.Column("contact_phone", sa.String(length=50), nullable=True),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("kleinunternehmer", sa.Boolean(), nullable=False),
        sa.Column("oss_registered", sa.Boolean(), nullable=False),
        sa.Column("destination_option", sa.Boolean(), nullable=False),
        sa.Column("destination_option_since", sa.Date(), nullable=True),
        sa.Column("founded_on", sa.Date(), nullable=True),
        sa.Column("established_in_one_member_state", sa.Boolean(), nullable=False),
        sa.Column("eu_sme_countries", sa.JSON(), nullable=False),
        sa.Column("eu_sme_id", sa.String(length=32), nullable=True),
        sa.Column("turnover_previous_year", sa.BigInteger(), nullable=True),
        sa.Column("turnover_current_year", sa.BigInteger(), nullable=False),
        sa.Column("forecast_current_year", sa.BigInteger(), nullable=True),
        sa.Column("eu_b2c_previous_year", sa.BigInteger(), nullable=False),
        sa.Column("eu_b2c_current_year", sa.BigInteger(), nullable=False),
        sa.Column("union_turnover_previous_year", sa.BigInteger(), nullable=False),
        sa.Column("union_turnover_current_year", sa.BigInteger(), nullable=False),
        sa.Column("founding_year_crossing", sa.String(length=32), nullable=False),
        sa.Column("exempt_at_exact_limit", sa.Boolean(), nullable=False),
        sa.Column("kleinunternehmer_reverse_charge_wording", sa.Boolean(), nullable=False),
        sa.Column("bank_iban", sa.String(length=34), nullable=True),
        sa.Column("bank_bic", sa.String(length=11), nullable=True),
        sa.Column("bank_account_holder", sa.String(length=200), nullable=True),
        sa.Column("invoice_language", sa.String(length=2), nullable=False),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("accent_color", sa.String(length=7), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("invoice_number_pattern", sa.String(length=64), nullable=False),
        sa.Column("credit_note_number_pattern", sa.String(length=64), nullable=False),
        sa.Column("credit_notes_share_invoice_series", sa.Boolean(), nullable=False),
        sa.Column("accepted_currencies", sa.JSON(), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "founding_year_crossing IN ('from_crossing_supply', 'from_start_of_year', 'forecast')",
            name=op.f("ck_seller_profiles_founding_year_crossing"),
        ),
        sa.CheckConstraint(
            "invoice_language IN ('de', 'en')", name=op.f("ck_seller_profiles_invoice_language")
        ),
        sa.CheckConstraint("length(country) = 2", name=op.f("ck_seller_profiles_country")),
        sa.CheckConstraint(
            "payment_terms_days >= 0", name=op.f("ck_seller_profiles_payment_terms_days")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_seller_profiles_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_seller_profiles")),
        sa.UniqueConstraint(
            "tenant_id", "livemode", name=op.f("uq_seller_profiles_tenant_id_livemode")
        ),
    )
    op.create_table(
        "invoices",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("supplied_on", sa.Date(), nullable=True),
        sa.Column("buyer_reference", sa.String(length=200), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("corrects_invoice_id", sa.String(length=40), nullable=True),
        sa.Column("credit_note_type", sa.String(length=16), nullable=True),
        sa.Column("credit_note_reason", sa.String(length=500), nullable=True),
        sa.Column("number", sa.String(length=64), nullable=True),
        sa.Column("number_series", sa.String(length=16), nullable=True),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("finalized_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("snapshot_json", sa.LargeBinary(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("net_minor", sa.BigInteger(), nullable=True),
        sa.Column("vat_minor", sa.BigInteger(), nullable=True),
        sa.Column("gross_minor", sa.BigInteger(), nullable=True),
        sa.Column("vat_eur_minor", sa.BigInteger(), nullable=True),
        sa.Column("eur_rate", sa.String(length=40), nullable=True),
        sa.Column("eur_rate_on", sa.Date(), nullable=True),
        sa.Column("oss_reportable", sa.Boolean(), nullable=True),
        sa.Column("retention_ends_on", sa.Date(), nullable=True),
        sa.Column("paid_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("payment_note", sa.String(length=500), nullable=True),
        sa.Column("voided_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("uncollectible_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("credited_net_minor", sa.BigInteger(), nullable=False),
        sa.Column("credited_gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'credit_note') = (corrects_invoice_id IS NOT NULL)",
            name=op.f("ck_invoices_credit_note_ref"),
        ),
        sa.CheckConstraint(
            "credit_note_type IS NULL OR credit_note_type IN ('cancellation', 'correction')",
            name=op.f("ck_invoices_credit_note_type"),
        ),
        sa.CheckConstraint(
            "kind IN ('invoice', 'small_amount', 'credit_note')", name=op.f("ck_invoices_kind")
        ),
        sa.CheckConstraint(
            "status = 'draft' OR (number IS NOT NULL AND snapshot_json IS NOT NULL AND content_sha256 IS NOT NULL AND issued_on IS NOT NULL AND retention_ends_on IS NOT NULL)",
            name=op.f("ck_invoices_finalized_content"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'open', 'paid', 'uncollectible', 'void', 'issued')",
            name=op.f("ck_invoices_status"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "corrects_invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_invoices_tenant_id_corrects_invoice_id_invoices"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_invoices_tenant_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invoices_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("tenant_id", "number", name=op.f("uq_invoices_tenant_id_number")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invoices_tenant_id_corrects_invoice_id",
            ["tenant_id", "corrects_invoice_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_invoices_tenant_id_customer_id", ["tenant_id", "customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_invoices_tenant_id_issued_on", ["tenant_id", "issued_on"], unique=False
        )
        batch_op.create_index(
            "ix_invoices_tenant_id_retention_ends_on",
            ["tenant_id", "retention_ends_on"],
            unique=False,
        )
        batch_op.create_index("ix_invoices_tenant_id_status", ["tenant_id", "status"], unique=False)

    op.create_table(
        "invoice_documents",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("snapshot_sha256", sa.String(length=64), nullable=False),
        sa.Column("renderer", sa.String(length=200), nullable=False),
        sa.Column("rendered_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint("format IN ('pdf', 'xml')", name=op.f("ck_invoice_documents_format")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_invoice_documents_tenant_id_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invoice_documents_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoice_documents")),
        sa.UniqueConstraint(
            "tenant_id",
            "invoice_id",
            "format",
            name=op.f("uq_invoice_documents_tenant_id_invoice_id_format"),
        ),
    )
    op.create_table(
        "invoice_lines",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("unit_code", sa.String(length=3), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("period_start_on", sa.Date(), nullable=True),
        sa.Column("period_end_on", sa.Date(), nullable=True),
        sa.Column("corrects_line_id", sa.String(length=40), nullable=True),
        sa.Column("tax_treatment", sa.String(length=32), nullable=True),
        sa.Column("tax_category", sa.String(length=2), nullable=True),
        sa.Column("tax_rate_bp", sa.Integer(), nullable=True),
        sa.Column("taxing_country", sa.String(length=2), nullable=True),
        sa.Column("created_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "period_start_on IS NULL OR period_end_on >= period_start_on",
            name=op.f("ck_invoice_lines_period"),
        ),
        sa.CheckConstraint("unit_amount >= 0", name=op.f("ck_invoice_lines_unit_amount")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "corrects_line_id"],
            ["invoice_lines.tenant_id", "invoice_lines.id"],
            name=op.f("fk_invoice_lines_tenant_id_corrects_line_id_invoice_lines"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_invoice_lines_tenant_id_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invoice_lines_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoice_lines")),
        sa.UniqueConstraint(
            "tenant_id",
            "invoice_id",
            "position",
            name=op.f("uq_invoice_lines_tenant_id_invoice_id_position"),
        ),
    )
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invoice_lines_tenant_id_corrects_line_id",
            ["tenant_id", "corrects_line_id"],
            unique=False,
        )

    op.create_table(
        "invoice_tax_groups",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=2), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("treatment", sa.String(length=32), nullable=False),
        sa.Column("taxing_country", sa.String(length=2), nullable=True),
        sa.Column("taxable_minor", sa.BigInteger(), nullable=False),
        sa.Column("vat_minor", sa.BigInteger(), nullable=False),
        sa.Column("vat_eur_minor", sa.BigInteger(), nullable=True),
        sa.Column("exemption_reason_code", sa.String(length=32), nullable=True),
        sa.Column("exemption_reason", sa.String(length=500), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_invoice_tax_groups_tenant_id_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invoice_tax_groups_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoice_tax_groups")),
        sa.UniqueConstraint(
            "tenant_id",
            "invoice_id",
            "position",
            name=op.f("uq_invoice_tax_groups_tenant_id_invoice_id_position"),
        ),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vat_id_status", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("vat_id_checked_at", saas.kernel.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_check_constraint(
            "vat_id_status",
            "vat_id_status IS NULL OR vat_id_status IN ('valid', 'invalid', 'unavailable')",
        )

    # ### end Alembic commands ###

    for table in TABLES:
        rls.enable_tenant_rls(op, table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TRIGGERS_UP)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TRIGGERS_DOWN)
    for table in TABLES:
        rls.disable_tenant_rls(op, table)
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_customers_vat_id_status"), type_="check")
        batch_op.drop_column("vat_id_checked_at")
        batch_op.drop_column("vat_id_status")

    op.drop_table("invoice_tax_groups")
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_invoice_lines_tenant_id_corrects_line_id")

    op.drop_table("invoice_lines")
    op.drop_table("invoice_documents")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_tenant_id_status")
        batch_op.drop_index("ix_invoices_tenant_id_retention_ends_on")
        batch_op.drop_index("ix_invoices_tenant_id_issued_on")
        batch_op.drop_index("ix_invoices_tenant_id_customer_id")
        batch_op.drop_index("ix_invoices_tenant_id_corrects_invoice_id")

    op.drop_table("invoices")
    op.drop_table("seller_profiles")
    op.drop_table("invoice_number_skips")
    op.drop_table("invoice_number_counters")
    # ### end Alembic commands ###
