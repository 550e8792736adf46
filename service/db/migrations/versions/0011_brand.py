"""A community's brand (colour and logo on its public reel pages) and the part of a source
video the member chose to keep (the recorder's trim, applied at ingest).

Revision ID: 0011_brand
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_brand"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("communities") as table:
        table.add_column(sa.Column("brand_colour", sa.String(7), nullable=True))
        table.add_column(sa.Column("logo_version", sa.Integer(), nullable=False,
                                   server_default="0"))
    with op.batch_alter_table("clips") as table:
        table.add_column(sa.Column("keep_from_ms", sa.Integer(), nullable=True))
        table.add_column(sa.Column("keep_to_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clips") as table:
        table.drop_column("keep_to_ms")
        table.drop_column("keep_from_ms")
    with op.batch_alter_table("communities") as table:
        table.drop_column("logo_version")
        table.drop_column("brand_colour")
