"""Moderation and reels: clip trims and captions with their edit history, reels, assets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("clips") as batch:
        batch.add_column(sa.Column("trim_in", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("trim_out", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("caption_name", sa.String(60), nullable=True))
        batch.add_column(sa.Column("caption_quote", sa.String(120), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("reviewed_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reviewed_at", TZ, nullable=True))
    with op.batch_alter_table("clips") as batch:
        batch.alter_column("trim_in", server_default=None)
        batch.alter_column("caption_quote", server_default=None)

    op.create_table(
        "clip_edits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clip_id", sa.String(32), sa.ForeignKey(
            "clips.id", ondelete="CASCADE", name="fk_clip_edits_clip_id_clips"), nullable=False),
        sa.Column("editor_id", sa.Integer(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_clip_edits"),
    )
    op.create_index("ix_clip_edits_clip_id", "clip_edits", ["clip_id"])

    op.create_table(
        "assets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey(
            "communities.id", ondelete="CASCADE", name="fk_assets_community_id_communities"),
            nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(80), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assets"),
    )
    op.create_index("ix_assets_community_id", "assets", ["community_id"])

    op.create_table(
        "reels",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey(
            "communities.id", ondelete="CASCADE", name="fk_reels_community_id_communities"),
            nullable=False),
        sa.Column("slug", sa.String(16), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("canvas", sa.String(8), nullable=False),
        sa.Column("composition", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rendered_version", sa.Integer(), nullable=True),
        sa.Column("public_version", sa.Integer(), nullable=True),
        sa.Column("republish", sa.Boolean(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("deadline_at", TZ, nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("published_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reels"),
        sa.UniqueConstraint("slug", name="uq_reels_slug"),
    )
    op.create_index("ix_reels_community_id", "reels", ["community_id"])
    op.create_index("ix_reels_state", "reels", ["state"])


def downgrade() -> None:
    op.drop_table("reels")
    op.drop_table("assets")
    op.drop_table("clip_edits")
    with op.batch_alter_table("clips") as batch:
        for column in ("reviewed_at", "reviewed_by", "caption_quote", "caption_name",
                       "trim_out", "trim_in"):
            batch.drop_column(column)
