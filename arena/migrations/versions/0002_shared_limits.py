"""limits shared by every worker: post_events (rate limit), participants.external_seq (sessions
per external id, unique)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('post_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_post_events_participant_id'), 'post_events', ['participant_id'],
                    unique=False)
    op.add_column('participants', sa.Column('external_seq', sa.Integer(), nullable=True))
    op.create_index('uq_participant_external_seq', 'participants',
                    ['external_id', 'external_seq'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_participant_external_seq', table_name='participants')
    with op.batch_alter_table('participants') as batch:
        batch.drop_column('external_seq')
    op.drop_index(op.f('ix_post_events_participant_id'), table_name='post_events')
    op.drop_table('post_events')
