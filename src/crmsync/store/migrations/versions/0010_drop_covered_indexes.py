"""Drop two indexes that another one covers, which every sync paid to maintain (issue 17).

`ix_field_history_key_field_changed_at` (key, field, changed_at) is the leading part of the unique
`ux_field_history_entry` (key, field, changed_at, coalesce(new_value, '')), and
`ix_opportunities_connection` (connection) of `ix_opportunities_connection_key` (connection, key):
every lookup the first of each pair served, the second serves as well on both backends.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_field_history_key_field_changed_at", table_name="field_history")
    op.drop_index("ix_opportunities_connection", table_name="opportunities")


def downgrade() -> None:
    op.create_index("ix_opportunities_connection", "opportunities", ["connection"])
    op.create_index(
        "ix_field_history_key_field_changed_at", "field_history", ["key", "field", "changed_at"]
    )
