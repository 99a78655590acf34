"""A lease in the store, so that of several `crmsync run` workers on one database only one runs
the scheduled jobs; the others stand by and take over once the holder stops renewing.

The lease is one row of the `leases` table. Taking or renewing it is a single conditional UPDATE
(`WHERE name = :name AND (holder = :me OR expires_at < :now)`), and the very first time an
INSERT ... ON CONFLICT DO NOTHING; either statement touches one row or none, so two workers
racing for it cannot both win, on SQLite (one writer at a time) or PostgreSQL (the row lock and
the unique key decide). Expiry compares the workers' clocks, which must agree to well within
the lease's duration (NTP does that).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from crmsync.store import Store
from crmsync.store.engine import insert_ignoring_duplicates
from crmsync.store.schema import leases
from crmsync.store.types import UTCDateTime

Clock = Callable[[], datetime]


def default_holder() -> str:
    """A name for this worker that is unique across machines and restarts: host, pid, random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LeaseState:
    """The lease row as it is now: who holds it and until when."""

    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    renewed_at: datetime


class Lease:
    """One named lease held (or wanted) by this worker, `holder`, for `duration` at a time."""

    def __init__(
        self,
        store: Store,
        name: str,
        holder: str,
        duration: timedelta,
        *,
        clock: Clock = _utcnow,
    ) -> None:
        if duration <= timedelta(0):
            raise ValueError("a lease must last longer than zero")
        self.store = store
        self.name = name
        self.holder = holder
        self.duration = duration
        self._clock = clock

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if this worker holds it.

        True when this worker holds it for `duration` from now; False when another holder's
        lease is still running. One transaction either way.
        """
        now = self._clock()
        mine = leases.c.holder == self.holder
        with self.store._writing("acquire lease") as conn:
            updated = conn.execute(
                sa.update(leases)
                .where(leases.c.name == self.name, sa.or_(mine, leases.c.expires_at < now))
                .values(
                    holder=self.holder,
                    acquired_at=sa.case(
                        (mine, leases.c.acquired_at), else_=sa.literal(now, UTCDateTime())
                    ),
                    expires_at=now + self.duration,
                    renewed_at=now,
                )
                .returning(leases.c.name)  # rowcount is not reliable across drivers
            )
            if updated.first() is not None:
                return True
            # No row yet (the first worker ever), or a row another live worker holds: only the
            # first case inserts; a concurrent first insert makes this one do nothing.
            inserted = conn.execute(
                insert_ignoring_duplicates(conn.dialect.name, leases)
                .values(
                    name=self.name,
                    holder=self.holder,
                    acquired_at=now,
                    expires_at=now + self.duration,
                    renewed_at=now,
                )
                .returning(leases.c.name)
            )
            return inserted.first() is not None

    def release(self) -> bool:
        """Let the lease go now (on a clean shutdown), so a standby takes over at once.

        Only this worker's own lease is touched; True when it held it.
        """
        now = self._clock()
        with self.store._writing("release lease") as conn:
            result = conn.execute(
                sa.update(leases)
                .where(leases.c.name == self.name, leases.c.holder == self.holder)
                .values(expires_at=now, renewed_at=now)
                .returning(leases.c.name)
            )
            return result.first() is not None

    def current(self) -> LeaseState | None:
        """The lease row (whoever holds it, expired or not), or None before anyone took it."""
        with self.store._reading("read lease") as conn:
            row = conn.execute(sa.select(leases).where(leases.c.name == self.name)).first()
        if row is None:
            return None
        return LeaseState(row.name, row.holder, row.acquired_at, row.expires_at, row.renewed_at)

    def held_by_me(self) -> bool:
        """Whether the row says this worker holds an unexpired lease (a read, no renewal)."""
        state = self.current()
        return (
            state is not None and state.holder == self.holder and state.expires_at >= self._clock()
        )
