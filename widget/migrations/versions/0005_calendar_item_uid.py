"""Calendar items keep their iCalendar UID

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('calendar_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uid', sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f('ix_calendar_items_uid'), ['uid'], unique=False)


def downgrade():
    with op.batch_alter_table('calendar_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_items_uid'))
        batch_op.drop_column('uid')
