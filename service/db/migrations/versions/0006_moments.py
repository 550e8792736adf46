"""Highlights from live sessions: proposed moments, the host's recording terms, and clips
whose consent basis is those terms.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("live_sessions") as batch:
        batch.add_column(sa.Column("terms_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("terms_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("terms_accepted_at", TZ, nullable=True))
        batch.add_column(sa.Column("signals", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("moments_state", sa.String(16), nullable=False,
                                   server_default="none"))
    with op.batch_alter_table("live_sessions") as batch:
        batch.alter_column("moments_state", server_default=None)
    with op.batch_alter_table("clips") as batch:
        batch.alter_column("release_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("consent_basis", sa.String(16), nullable=False,
                                   server_default="release"))
    with op.batch_alter_table("clips") as batch:
        batch.alter_column("consent_basis", server_default=None)
    op.create_table(
        "live_moments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(32), sa.ForeignKey(
            "live_sessions.id", ondelete="CASCADE",
            name="fk_live_moments_session_id_live_sessions"), nullable=False),
        sa.Column("start_ms", sa.Integer(), nullable=False),
        sa.Column("end_ms", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("clip_id", sa.String(32), sa.ForeignKey(
            "clips.id", ondelete="SET NULL", name="fk_live_moments_clip_id_clips"),
            nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_live_moments"),
        sa.UniqueConstraint("clip_id", name="uq_live_moments_clip_id"),
    )
    op.create_index("ix_live_moments_session_id", "live_moments", ["session_id"])


def downgrade() -> None:
    op.drop_table("live_moments")
    op.execute("DELETE FROM clips WHERE consent_basis <> 'release'")
    with op.batch_alter_table("clips") as batch:
        batch.drop_column("consent_basis")
        batch.alter_column("release_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("live_sessions") as batch:
        for column in ("moments_state", "signals", "terms_accepted_at", "terms_sha256",
                       "terms_version"):
            batch.drop_column(column)
