"""The last run of each scheduled job ("workflow:<name>"): one `job_runs` row a job.

The functions run inside the caller's transaction (the `Store` methods that use them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.store.schema import job_runs


def record(
    conn: Connection, job: str, *, started_at: datetime, finished_at: datetime, status: str
) -> None:
    """Replace the job's row with this run."""
    conn.execute(sa.delete(job_runs).where(job_runs.c.job == job))
    conn.execute(
        sa.insert(job_runs).values(
            job=job, started_at=started_at, finished_at=finished_at, status=status
        )
    )


def last_started(conn: Connection, job: str) -> datetime | None:
    """When the job's last recorded run started, or None."""
    started: datetime | None = conn.scalar(
        sa.select(job_runs.c.started_at).where(job_runs.c.job == job)
    )
    return started


def every(conn: Connection) -> list[dict[str, Any]]:
    """Every job's last run, by job name."""
    rows = conn.execute(sa.select(job_runs).order_by(job_runs.c.job))
    return [dict(row._mapping) for row in rows]
