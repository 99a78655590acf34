"""Scale-out over several workers (issue 19): fencing tokens, schedule marks, the shared quota
budget, and, on PostgreSQL, Procrastinate's job queue schema.

Procrastinate's tables, types and functions come from the installed package's own `schema.sql`
(its SchemaManager), run in this migration's transaction, so one `Store.open` (or `alembic
upgrade`) sets up both. pyproject pins procrastinate to one minor version: a later one may change
its schema, which will come as a crmsync migration applying Procrastinate's migration files.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmsync.store.types import UTCDateTime

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROP_QUEUE = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
    procrastinate_workers CASCADE;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
    procrastinate_job_status CASCADE;
DO $$
DECLARE f record;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%'
    LOOP
        EXECUTE 'DROP FUNCTION ' || f.sig || ' CASCADE';
    END LOOP;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "fences",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "schedule_marks",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "quota_budgets",
        sa.Column("org", sa.Text(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=True),
        sa.Column("allowance", sa.BigInteger(), nullable=True),
        sa.Column("observed_at", UTCDateTime(), nullable=True),
        sa.Column("blocked_until", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("org"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and not _has_queue(bind):
        from procrastinate.schema import SchemaManager

        # Several statements, no parameters: psycopg runs them as one simple query, `%` as is.
        bind.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]


def _has_queue(bind: sa.Connection) -> bool:
    found = bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar()
    return bool(found)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.connection.driver_connection.execute(_DROP_QUEUE)  # type: ignore[union-attr]
    op.drop_table("quota_budgets")
    op.drop_table("schedule_marks")
    op.drop_table("fences")
