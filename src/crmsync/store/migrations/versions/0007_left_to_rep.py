"""Episodes remember that a rep deleted, completed or re-dated their task in the CRM, so that
crmsync sends no more reminders for it (issue 13, finding 6).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("episodes", sa.Column("left_to_rep", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("episodes") as batch:  # SQLite drops a column by copying
        batch.drop_column("left_to_rep")
