"""Hardening: the title the public page shows (changed only by a publish), password reset
links, and the outbox of mails.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("reels") as batch:
        batch.add_column(sa.Column("public_title", sa.String(120), nullable=True))
    op.execute("UPDATE reels SET public_title = title WHERE public_version IS NOT NULL")
    op.create_table(
        "password_resets",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey(
            "users.id", ondelete="CASCADE", name="fk_password_resets_user_id_users"),
            nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_password_resets"),
    )
    op.create_index("ix_password_resets_user_id", "password_resets", ["user_id"])
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mail_outbox"),
    )


def downgrade() -> None:
    op.drop_table("mail_outbox")
    op.drop_table("password_resets")
    with op.batch_alter_table("reels") as batch:
        batch.drop_column("public_title")
