"""Live sessions and their chat and reactions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "live_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey(
            "communities.id", ondelete="CASCADE",
            name="fk_live_sessions_community_id_communities"), nullable=False),
        sa.Column("host_id", sa.Integer(), sa.ForeignKey(
            "users.id", ondelete="CASCADE", name="fk_live_sessions_host_id_users"),
            nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("publish_token_hash", sa.String(64), nullable=False),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("ended_at", TZ, nullable=True),
        sa.Column("recording_state", sa.String(16), nullable=False),
        sa.Column("recording_key", sa.String(200), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_live_sessions"),
    )
    op.create_index("ix_live_sessions_community_id", "live_sessions", ["community_id"])
    op.create_index("ix_live_sessions_state", "live_sessions", ["state"])
    op.create_table(
        "live_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(32), sa.ForeignKey(
            "live_sessions.id", ondelete="CASCADE",
            name="fk_live_events_session_id_live_sessions"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("body", sa.String(500), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("deleted_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_live_events"),
    )
    op.create_index("ix_live_events_session_id", "live_events", ["session_id"])


def downgrade() -> None:
    op.drop_table("live_events")
    op.drop_table("live_sessions")
