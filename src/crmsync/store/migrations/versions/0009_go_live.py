"""When each workflow first went live per connection, how its episodes were enrolled at that
moment, and when a rep's dismissal was noticed (issue 15, go-live and rep controls).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "go_live",
        sa.Column("connection", sa.Text(), primary_key=True),
        sa.Column("workflow", sa.Text(), primary_key=True),
        sa.Column("live_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enroll", sa.Text(), nullable=False),
    )
    op.add_column("episodes", sa.Column("enroll", sa.Text(), nullable=True))
    op.add_column("episodes", sa.Column("left_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("episodes") as batch:  # SQLite drops a column by copying
        batch.drop_column("left_at")
        batch.drop_column("enroll")
    op.drop_table("go_live")
