"""Indexes for a record's Emails list: addresses with their email's id, and the user's emails by id

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_addresses', schema=None) as batch_op:
        batch_op.create_index('ix_email_addresses_address_email', ['address', 'email_id'], unique=False)
        batch_op.drop_index(batch_op.f('ix_email_addresses_address'))

    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.create_index('ix_emails_user_listing',
                              ['user_id', 'id', 'received_at', 'internet_message_id', 'item_id'], unique=False)


def downgrade():
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.drop_index('ix_emails_user_listing')

    with op.batch_alter_table('email_addresses', schema=None) as batch_op:
        batch_op.drop_index('ix_email_addresses_address_email')
        batch_op.create_index(batch_op.f('ix_email_addresses_address'), ['address'], unique=False)
