"""Sign-in attempts per Exchange identity, kept below the directory's lockout threshold: credential_budgets

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'credential_budgets',
        sa.Column('identity', sa.String(length=320), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('in_flight', sa.Integer(), nullable=False),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('identity', name=op.f('pk_credential_budgets')),
    )


def downgrade():
    op.drop_table('credential_budgets')
