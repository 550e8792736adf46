"""Notifications: in-app notices, each person's choices per kind, address opt-outs,
announcements made once, calendar feeds; the outbox keeps HTML, headers and retries.

Revision ID: 0009_notifications
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_notifications"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("mail_outbox") as batch:
        batch.add_column(sa.Column("html", sa.Text(), nullable=True))
        batch.add_column(sa.Column("headers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(32), nullable=True))
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("failed_at", TZ, nullable=True))
    with op.batch_alter_table("mail_outbox") as batch:
        batch.alter_column("attempts", server_default=None)
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey(
            "users.id", ondelete="CASCADE", name="fk_notifications_user_id_users"),
            nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey(
            "communities.id", ondelete="CASCADE",
            name="fk_notifications_community_id_communities"), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(96), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("link", sa.String(300), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("read_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("user_id", "key", name="uq_notifications_user_key"),
    )
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"])
    op.create_table(
        "notification_choices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey(
            "users.id", ondelete="CASCADE", name="fk_notification_choices_user_id_users"),
            nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_choices"),
        sa.UniqueConstraint("user_id", "kind", name="uq_notification_choices_user_kind"),
    )
    op.create_table(
        "mail_opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mail_opt_outs"),
        sa.UniqueConstraint("email", "kind", name="uq_mail_opt_outs_email_kind"),
    )
    op.create_table(
        "announcements",
        sa.Column("key", sa.String(96), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey(
            "communities.id", ondelete="CASCADE",
            name="fk_announcements_community_id_communities"), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("link", sa.String(300), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=True),
        sa.Column("exclude_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_announcements"),
    )
    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey(
            "users.id", ondelete="CASCADE", name="fk_calendar_feeds_user_id_users"),
            nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_calendar_feeds"),
    )


def downgrade() -> None:
    op.drop_table("calendar_feeds")
    op.drop_table("announcements")
    op.drop_table("mail_opt_outs")
    op.drop_table("notification_choices")
    op.drop_index("ix_notifications_created_at", "notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("mail_outbox") as batch:
        for column in ("failed_at", "attempts", "user_id", "kind", "headers", "html"):
            batch.drop_column(column)
