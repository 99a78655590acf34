"""Daily pipeline snapshots for the pipeline review (issue 18): one row per open deal per
connection per day, and one row per connection and day saying how that day was made.

Both tables start empty: the first sync of each connection after the upgrade writes today's
snapshot and rebuilds the weeks before it from the stored field history.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
DECIMAL = sa.Numeric().with_variant(sa.Text(), "sqlite")  # text keeps every digit on SQLite


def upgrade() -> None:
    op.create_table(
        "pipeline_snapshots",
        sa.Column("connection", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=True),
        sa.Column("stage", sa.Text(), nullable=True),
        sa.Column("stage_canonical", sa.Text(), nullable=True),
        sa.Column("amount", DECIMAL, nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("forecast_category", sa.Text(), nullable=True),
        sa.Column("close_date", sa.Date(), nullable=True),
        sa.Column("owner_id", sa.Text(), nullable=True),
        sa.Column("open_findings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("connection", "day", "key"),
        sqlite_with_rowid=False,  # the rows live in the primary key's b-tree: no second copy
    )
    op.create_table(
        "pipeline_snapshot_days",
        sa.Column("connection", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("deals", sa.Integer(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("connection", "day"),
    )


def downgrade() -> None:
    op.drop_table("pipeline_snapshot_days")
    op.drop_table("pipeline_snapshots")
