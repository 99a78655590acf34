"""Write-back: rule episodes, the outbox, flag state and the audit trail.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _when(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "episodes",
        _text("workflow", nullable=False),
        _text("rule", nullable=False),
        sa.Column("opp_key", KEY, nullable=False),
        _text("connection", nullable=False),
        _text("native_id", nullable=False),
        _text("owner_id"),
        _text("state", nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        _when("opened_at", nullable=False),
        _when("last_seen_at", nullable=False),
        _when("resolved_at"),
        _text("flag_field"),
        _text("flag_value"),
        _text("task_key"),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("last_task_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("workflow", "rule", "opp_key"),
    )
    op.create_index(
        "ix_episodes_workflow_connection_state", "episodes", ["workflow", "connection", "state"]
    )
    op.create_table(
        "outbox",
        _text("key", nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _text("connection", nullable=False),
        _text("workflow", nullable=False),
        _text("rule"),
        sa.Column("opp_key", KEY, nullable=False),
        _text("native_id", nullable=False),
        _text("kind", nullable=False),
        sa.Column("payload", JSON, nullable=False),
        _text("state", nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _text("crm_id"),
        _text("error"),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_outbox_connection_state", "outbox", ["connection", "state"])
    op.create_table(
        "flag_state",
        _text("connection", nullable=False),
        sa.Column("opp_key", KEY, nullable=False),
        _text("field", nullable=False),
        _text("value"),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("connection", "opp_key", "field"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _when("at", nullable=False),
        _text("key", nullable=False),
        _text("connection", nullable=False),
        _text("workflow", nullable=False),
        _text("rule"),
        sa.Column("opp_key", KEY, nullable=False),
        _text("native_id", nullable=False),
        _text("kind", nullable=False),
        _text("state", nullable=False),
        _text("detail"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_opp_key", "audit", ["opp_key"])
    op.create_index("ix_audit_rule", "audit", ["rule"])
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("flag_state")
    op.drop_table("outbox")
    op.drop_table("episodes")
