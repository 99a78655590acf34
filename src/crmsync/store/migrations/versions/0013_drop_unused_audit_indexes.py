"""Drop two audit indexes no query uses, which every write-back action paid to maintain three
times over (planned, sent, confirmed; issue 17).

`ix_audit_rule` (rule): audit queries filter and group by `rule_label` (a CASE over rule and
kind), which no index on `rule` serves. `ix_audit_opp_key` (opp_key): the opportunity filter is
`native_id = ? OR opp_key = ?`, and with no index on native_id neither backend can use it (both
scan; checked with EXPLAIN, PostgreSQL also with sequential scans disabled). `ix_audit_at` stays:
`--since` uses it.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_audit_rule", table_name="audit")
    op.drop_index("ix_audit_opp_key", table_name="audit")


def downgrade() -> None:
    op.create_index("ix_audit_opp_key", "audit", ["opp_key"])
    op.create_index("ix_audit_rule", "audit", ["rule"])
