"""payments: the tenant's Stripe publishable key, for card setup in the customer portal

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-21 21:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    # not a secret (Stripe.js shows it to every browser), so stored in clear
    with op.batch_alter_table("payment_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stripe_publishable_key", sa.String(length=255), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("payment_settings", schema=None) as batch_op:
        batch_op.drop_column("stripe_publishable_key")
