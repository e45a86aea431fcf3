"""Bodies fetched when first needed: emails.body_fetched (the emails stored so far have theirs)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_fetched', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.alter_column('body_fetched', server_default=None)


def downgrade():
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.drop_column('body_fetched')
