"""initial schema: participants, sessions, turns, votes

Revision ID: 0001
Revises: (none)
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('participants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=True),
    sa.Column('study_id', sa.String(length=128), nullable=False),
    sa.Column('config_version', sa.String(length=32), nullable=False),
    sa.Column('pair_index', sa.Integer(), nullable=False),
    sa.Column('model_a', sa.String(length=128), nullable=False),
    sa.Column('model_b', sa.String(length=128), nullable=False),
    sa.Column('task_id', sa.String(length=256), nullable=True),
    sa.Column('task_intent', sa.Text(), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('final_choice', sa.String(length=16), nullable=True),
    sa.Column('final_rationale', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_participants_external_id'), 'participants', ['external_id'], unique=False)
    op.create_index(op.f('ix_participants_token'), 'participants', ['token'], unique=True)
    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('participant_id', 'kind', name='uq_session_kind')
    )
    op.create_index(op.f('ix_sessions_participant_id'), 'sessions', ['participant_id'], unique=False)
    op.create_table('turns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('user_text', sa.Text(), nullable=False),
    sa.Column('left_model', sa.String(length=128), nullable=False),
    sa.Column('right_model', sa.String(length=128), nullable=False),
    sa.Column('reply_left', sa.Text(), nullable=True),
    sa.Column('reply_right', sa.Text(), nullable=True),
    sa.Column('latency_left_s', sa.Float(), nullable=True),
    sa.Column('latency_right_s', sa.Float(), nullable=True),
    sa.Column('error_left', sa.Text(), nullable=True),
    sa.Column('error_right', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'index', name='uq_turn_index')
    )
    op.create_index(op.f('ix_turns_session_id'), 'turns', ['session_id'], unique=False)
    op.create_table('votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('turn_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('choice', sa.String(length=16), nullable=False),
    sa.Column('winner', sa.String(length=16), nullable=False),
    sa.Column('continued_model', sa.String(length=128), nullable=False),
    sa.Column('rationale', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], ),
    sa.ForeignKeyConstraint(['turn_id'], ['turns.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('turn_id')
    )
    op.create_index(op.f('ix_votes_participant_id'), 'votes', ['participant_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_votes_participant_id'), table_name='votes')
    op.drop_table('votes')
    op.drop_index(op.f('ix_turns_session_id'), table_name='turns')
    op.drop_table('turns')
    op.drop_index(op.f('ix_sessions_participant_id'), table_name='sessions')
    op.drop_table('sessions')
    op.drop_index(op.f('ix_participants_token'), table_name='participants')
    op.drop_index(op.f('ix_participants_external_id'), table_name='participants')
    op.drop_table('participants')
