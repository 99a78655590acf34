"""Named leases: one row per lease in the `leases` table, taken, renewed and released by one
conditional statement each, so that two workers racing for a lease cannot both win.

Taking or renewing is a single UPDATE (`WHERE name = :name AND (holder = :me OR expires_at <
:now)`), and the very first time an INSERT ... ON CONFLICT DO NOTHING; either statement touches
one row or none, on SQLite (one writer at a time) or PostgreSQL (the row lock and the unique key
decide). The functions run inside the caller's transaction (`Store.take_lease` and friends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.store.engine import insert_ignoring_duplicates
from crmsync.store.schema import leases
from crmsync.store.types import UTCDateTime


@dataclass(frozen=True)
class LeaseState:
    """The lease row as it is now: who holds it and until when."""

    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    renewed_at: datetime


def take(conn: Connection, name: str, holder: str, now: datetime, expires_at: datetime) -> bool:
    """Take the lease if it is free or expired, or renew it if `holder` holds it; True when
    `holder` holds it until `expires_at`, False when another holder's lease still runs."""
    mine = leases.c.holder == holder
    updated = conn.execute(
        sa.update(leases)
        .where(leases.c.name == name, sa.or_(mine, leases.c.expires_at < now))
        .values(
            holder=holder,
            acquired_at=sa.case((mine, leases.c.acquired_at), else_=sa.literal(now, UTCDateTime())),
            expires_at=expires_at,
            renewed_at=now,
        )
        .returning(leases.c.name)  # rowcount is not reliable across drivers
    )
    if updated.first() is not None:
        return True
    # No row yet (the first worker ever), or a row another live worker holds: only the first
    # case inserts; a concurrent first insert makes this one do nothing.
    inserted = conn.execute(
        insert_ignoring_duplicates(conn.dialect.name, leases)
        .values(name=name, holder=holder, acquired_at=now, expires_at=expires_at, renewed_at=now)
        .returning(leases.c.name)
    )
    return inserted.first() is not None


def release(conn: Connection, name: str, holder: str, now: datetime) -> bool:
    """Let `holder`'s lease expire at `now`; True when it held it (no one else's is touched)."""
    result = conn.execute(
        sa.update(leases)
        .where(leases.c.name == name, leases.c.holder == holder)
        .values(expires_at=now, renewed_at=now)
        .returning(leases.c.name)
    )
    return result.first() is not None


def read(conn: Connection, name: str) -> LeaseState | None:
    """The lease row (whoever holds it, expired or not), or None before anyone took it."""
    row = conn.execute(sa.select(leases).where(leases.c.name == name)).first()
    if row is None:
        return None
    return LeaseState(row.name, row.holder, row.acquired_at, row.expires_at, row.renewed_at)
