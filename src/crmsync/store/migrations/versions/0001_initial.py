"""The first schema: opportunities, field history, sync cursors, sync runs, set-aside records.

Revision ID: 0001
Revises:
Create Date: 2026-11-20 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, frozen here; crmsync.store.types maps its Python values onto exactly these.
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
DECIMAL = sa.Numeric().with_variant(sa.Text(), "sqlite")  # text keeps every digit on SQLite
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _when(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def upgrade() -> None:
    """Create the tables and their indexes."""
    op.create_table(
        "opportunities",
        sa.Column("key", KEY, primary_key=True),
        _text("connection", nullable=False),
        _text("native_id", nullable=False),
        _text("source", nullable=False),
        _text("name", nullable=False),
        _when("modified_at", nullable=False),
        _text("account_id"),
        _text("account_name"),
        _text("owner_id"),
        _text("owner_name"),
        _text("owner_email"),
        sa.Column("owner_active", sa.Boolean(), nullable=True),
        _text("pipeline"),
        _text("stage"),
        _text("stage_canonical"),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("is_won", sa.Boolean(), nullable=False),
        sa.Column("amount", DECIMAL, nullable=True),
        _text("currency"),
        sa.Column("probability", sa.Float(), nullable=True),
        _text("forecast_category"),
        sa.Column("close_date", sa.Date(), nullable=True),
        _text("next_step"),
        _when("last_activity_at"),
        _when("created_at"),
        _when("stage_entered_at"),
        _text("budget"),
        sa.Column("budget_confirmed", sa.Boolean(), nullable=True),
        _text("economic_buyer"),
        _text("pain"),
        _text("timeline"),
        _text("metrics"),
        _text("decision_criteria"),
        _text("decision_process"),
        _text("champion"),
        sa.Column("custom", JSON, nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        _when("deleted_at"),
        _when("first_seen_at", nullable=False),
        _when("synced_at", nullable=False),
    )
    op.create_index("ix_opportunities_connection", "opportunities", ["connection"])

    op.create_table(
        "field_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", KEY, nullable=False),
        _text("field", nullable=False),
        _text("old_value"),
        _text("new_value"),
        _when("changed_at", nullable=False),
        _text("origin", nullable=False),
    )
    op.create_index(
        "ix_field_history_key_field_changed_at", "field_history", ["key", "field", "changed_at"]
    )
    # A cleared value (NULL) counts as one value here, so re-read CRM history never duplicates.
    op.create_index(
        "ux_field_history_entry",
        "field_history",
        ["key", "field", "changed_at", sa.text("coalesce(new_value, '')")],
        unique=True,
    )

    op.create_table(
        "sync_cursors",
        sa.Column("connection", sa.Text(), primary_key=True),
        sa.Column("object", sa.Text(), primary_key=True),
        _text("value", nullable=False),
        sa.Column("ids_at_value", JSON, nullable=False),
        _when("updated_at", nullable=False),
    )

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _text("connection", nullable=False),
        _text("object", nullable=False),
        _text("kind", nullable=False),
        _when("started_at", nullable=False),
        _when("finished_at"),
        _text("status", nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("upserted", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("set_aside", sa.Integer(), nullable=False),
        sa.Column("api_calls", sa.Integer(), nullable=False),
        _text("error"),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
    )
    op.create_index("ix_sync_runs_connection_started_at", "sync_runs", ["connection", "started_at"])

    op.create_table(
        "set_aside",
        sa.Column("connection", sa.Text(), primary_key=True),
        sa.Column("native_id", sa.Text(), primary_key=True),
        _text("reason", nullable=False),
        sa.Column("raw", JSON, nullable=False),
        _when("seen_at", nullable=False),
    )


def downgrade() -> None:
    """Drop everything the upgrade created."""
    op.drop_table("set_aside")
    op.drop_table("sync_runs")
    op.drop_table("sync_cursors")
    op.drop_table("field_history")
    op.drop_table("opportunities")
