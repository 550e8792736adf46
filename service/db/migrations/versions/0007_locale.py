"""Languages and time zones: each community's language and zone, each person's own choice,
release texts per language (a clip records the language it accepted), and the values of
member-facing reasons kept apart from their words so they can be told in any language.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("communities") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=False,
                                   server_default="id"))
        batch.add_column(sa.Column("time_zone", sa.String(64), nullable=False,
                                   server_default="Asia/Jakarta"))
    with op.batch_alter_table("communities") as batch:
        batch.alter_column("language", server_default=None)
        batch.alter_column("time_zone", server_default=None)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
        batch.add_column(sa.Column("time_zone", sa.String(64), nullable=True))
    # the release texts written so far are the English default or English edits of it
    with op.batch_alter_table("release_texts") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=False,
                                   server_default="en"))
        batch.drop_constraint("uq_release_texts_community_id", type_="unique")
        batch.create_unique_constraint("uq_release_texts_language_version",
                                       ["community_id", "language", "version"])
    with op.batch_alter_table("release_texts") as batch:
        batch.alter_column("language", server_default=None)
    with op.batch_alter_table("clips") as batch:
        batch.add_column(sa.Column("release_language", sa.String(8), nullable=True))
        batch.add_column(sa.Column("reason_args", sa.JSON(), nullable=True))
    op.execute("UPDATE clips SET release_language = 'en' WHERE consent_basis = 'release'")
    with op.batch_alter_table("reels") as batch:
        batch.add_column(sa.Column("reason_args", sa.JSON(), nullable=True))
    with op.batch_alter_table("live_moments") as batch:
        batch.add_column(sa.Column("why_args", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("live_moments") as batch:
        batch.drop_column("why_args")
    with op.batch_alter_table("reels") as batch:
        batch.drop_column("reason_args")
    with op.batch_alter_table("clips") as batch:
        batch.drop_column("reason_args")
        batch.drop_column("release_language")
    with op.batch_alter_table("release_texts") as batch:
        batch.drop_constraint("uq_release_texts_language_version", type_="unique")
        batch.create_unique_constraint("uq_release_texts_community_id",
                                       ["community_id", "version"])
        batch.drop_column("language")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("time_zone")
        batch.drop_column("language")
    with op.batch_alter_table("communities") as batch:
        batch.drop_column("time_zone")
        batch.drop_column("language")
