"""The sync runs' bookkeeping: one `sync_runs` row per run, from start to finish.

The functions run inside the caller's transaction (the `Store` methods of the same names).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.model.records import RUN_KINDS, RUN_STATUSES
from crmsync.store.schema import sync_runs

COUNTS = ("fetched", "upserted", "deleted", "set_aside", "api_calls")


def start(conn: Connection, connection: str, obj: str, kind: str, started_at: datetime) -> int:
    """Record a sync run as running; returns its id."""
    if kind not in RUN_KINDS:
        raise ValueError(f"run kind must be one of {', '.join(RUN_KINDS)}, not {kind!r}")
    values = {
        "connection": connection,
        "object": obj,
        "kind": kind,
        "started_at": started_at,
        "status": "running",
        **dict.fromkeys(COUNTS, 0),
    }
    result = conn.execute(sa.insert(sync_runs).values(values).returning(sync_runs.c.id))
    return int(result.scalar_one())


def check_status(status: str) -> None:
    """A ValueError unless `status` is a run status."""
    if status not in RUN_STATUSES:
        raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}")


def finish(
    conn: Connection,
    run_id: int,
    *,
    status: str,
    finished_at: datetime,
    error: str | None,
    counts: dict[str, int],
) -> None:
    """Record how a run ended, with its counts; the duration comes from its start."""
    started = conn.scalar(sa.select(sync_runs.c.started_at).where(sync_runs.c.id == run_id))
    if started is None:
        raise ValueError(f"no sync run with id {run_id}")
    conn.execute(
        sa.update(sync_runs)
        .where(sync_runs.c.id == run_id)
        .values(
            status=status,
            finished_at=finished_at,
            **counts,
            error=error,
            duration_seconds=(finished_at - started).total_seconds(),
        )
    )


def close_abandoned(
    conn: Connection, finished_at: datetime, error: str, connection: str | None = None
) -> int:
    """Mark every run still `running` (of `connection`, or all) as failed; returns how many."""
    query = sa.select(sync_runs.c.id, sync_runs.c.started_at).where(sync_runs.c.status == "running")
    if connection is not None:
        query = query.where(sync_runs.c.connection == connection)
    stale = conn.execute(query).all()
    for run_id, started in stale:
        conn.execute(
            sa.update(sync_runs)
            .where(sync_runs.c.id == run_id, sync_runs.c.status == "running")
            .values(
                status="failed",
                finished_at=finished_at,
                error=error,
                duration_seconds=max(0.0, (finished_at - started).total_seconds()),
            )
        )
    return len(stale)


def latest(conn: Connection, connection: str | None, limit: int) -> list[dict[str, Any]]:
    """The latest sync runs, newest first, each as a dict of its columns."""
    stmt = sa.select(sync_runs).order_by(sync_runs.c.started_at.desc(), sync_runs.c.id.desc())
    if connection is not None:
        stmt = stmt.where(sync_runs.c.connection == connection)
    return [dict(row._mapping) for row in conn.execute(stmt.limit(limit))]


def last_success(conn: Connection, connection: str) -> datetime | None:
    """When the connection's last successful sync finished, or None."""
    stmt = sa.select(sa.func.max(sync_runs.c.finished_at)).where(
        sync_runs.c.connection == connection, sync_runs.c.status == "ok"
    )
    return _moment(conn.execute(stmt).scalar())


def last_full_pass(conn: Connection, connection: str) -> datetime | None:
    """When the connection's last successful full sync or reconcile started, or None."""
    stmt = sa.select(sa.func.max(sync_runs.c.started_at)).where(
        sync_runs.c.connection == connection,
        sync_runs.c.status == "ok",
        sync_runs.c.kind.in_(["full", "reconcile"]),
    )
    return _moment(conn.execute(stmt).scalar())


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite's max() of a DATETIME column comes back as its text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
