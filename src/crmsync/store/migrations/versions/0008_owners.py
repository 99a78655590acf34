"""Each connection's owner directory (active, manager, teams), for routing tasks away from
inactive or missing owners (issue 15, routing).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("connection", sa.Text(), primary_key=True),
        sa.Column("owner_id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("manager_id", sa.Text(), nullable=True),
        sa.Column("teams", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("owners")
