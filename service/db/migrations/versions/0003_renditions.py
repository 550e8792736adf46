"""Renditions: which version of a clip's web rendition is current, and its facts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clips") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rendition", sa.JSON(), nullable=False,
                                   server_default=sa.text("'{}'")))
    with op.batch_alter_table("clips") as batch:
        batch.alter_column("version", server_default=None)
        batch.alter_column("rendition", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("clips") as batch:
        batch.drop_column("rendition")
        batch.drop_column("version")
