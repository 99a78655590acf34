"""What each deal's history says, kept by the sync so that a plan reads one row per deal.

The table starts empty: plans read the history as before until the next sync of a connection
fills it (the sync brings out-of-date summaries up to date at its end).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "history_summaries",
        sa.Column("key", KEY, nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stage_regressions", sa.Integer(), nullable=False),
        sa.Column("skipped_stages", JSON, nullable=False),
        sa.Column("close_date_push_count", sa.Integer(), nullable=False),
        sa.Column("close_date_slip_days", sa.Integer(), nullable=False),
        sa.Column("next_step_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stays", JSON, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("history_summaries")
