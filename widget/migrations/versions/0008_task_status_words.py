"""Task statuses in the mailbox port's own words (not_started, completed, ...), not EWS's (NotStarted, ...)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

WORDS = {'NotStarted': 'not_started', 'InProgress': 'in_progress', 'Completed': 'completed',
         'WaitingOnOthers': 'waiting_on_others', 'Deferred': 'deferred'}
tasks = sa.table('tasks', sa.column('status', sa.String))


def upgrade():
    for old, new in WORDS.items():
        op.execute(tasks.update().where(tasks.c.status == old).values(status=new))


def downgrade():
    for old, new in WORDS.items():
        op.execute(tasks.update().where(tasks.c.status == new).values(status=old))
