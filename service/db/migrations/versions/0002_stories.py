"""Stories: prompts, clips with consent, resumable uploads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.db.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("max_seconds", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_prompts"),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"], ondelete="CASCADE",
                                name="fk_prompts_community_id_communities"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL",
                                name="fk_prompts_created_by_users"),
    )
    op.create_index("ix_prompts_community_id", "prompts", ["community_id"])
    op.create_table(
        "clips",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("filename", sa.String(120), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("hint", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("release_version", sa.Integer(), nullable=False),
        sa.Column("release_sha256", sa.String(64), nullable=False),
        sa.Column("consented_at", UTCDateTime(), nullable=False),
        sa.Column("deadline_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_clips"),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"], ondelete="CASCADE",
                                name="fk_clips_community_id_communities"),
        sa.ForeignKeyConstraint(["member_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_clips_member_id_users"),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], ondelete="SET NULL",
                                name="fk_clips_prompt_id_prompts"),
        sa.ForeignKeyConstraint(["release_id"], ["release_texts.id"],
                                name="fk_clips_release_id_release_texts"),
    )
    op.create_index("ix_clips_community_id", "clips", ["community_id"])
    op.create_index("ix_clips_member_id", "clips", ["member_id"])
    op.create_index("ix_clips_state", "clips", ["state"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(43), nullable=False),
        sa.Column("clip_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("storage_upload_id", sa.String(1024), nullable=True),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        sa.UniqueConstraint("clip_id", name="uq_uploads_clip_id"),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], ondelete="CASCADE",
                                name="fk_uploads_clip_id_clips"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_uploads_user_id_users"),
    )
    op.create_index("ix_uploads_user_id", "uploads", ["user_id"])
    op.create_index("ix_uploads_expires_at", "uploads", ["expires_at"])


def downgrade() -> None:
    for table in ("uploads", "clips", "prompts"):
        op.drop_table(table)
