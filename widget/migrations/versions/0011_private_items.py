"""Items marked Private or Confidential in Outlook: emails.is_private and calendar_items.is_private

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08

The rows stored so far are taken as not private until the next sync tells: every folder's sync state is cleared,
so that the next sync is a full pass that reads every item's sensitivity again (and deletes nothing it still finds).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('emails', 'calendar_items'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('is_private', sa.Boolean(), nullable=False, server_default=sa.false()))
    folder_syncs = sa.table('folder_syncs', sa.column('sync_state', sa.Text))
    op.execute(folder_syncs.update().values(sync_state=None))


def downgrade():
    for table in ('emails', 'calendar_items'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('is_private')
