"""A lease in the store, so that of several `crmsync run` workers on one database only one runs
the scheduled jobs; the others stand by and take over once the holder stops renewing.

The lease is one row of the store's `leases` table, taken or renewed by one conditional statement
(`Store.take_lease`, see crmsync.store.leases), so two workers racing for it cannot both win, on
SQLite or PostgreSQL. Expiry compares the workers' clocks, which must agree to well within the
lease's duration (NTP does that).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from crmsync.store import LeaseState, Store

__all__ = ["Clock", "Lease", "LeaseState", "default_holder"]

Clock = Callable[[], datetime]


def default_holder() -> str:
    """A name for this worker that is unique across machines and restarts: host, pid, random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
        return self.store.take_lease(
            self.name, self.holder, now=now, expires_at=now + self.duration
        )

    def release(self) -> bool:
        """Let the lease go now (on a clean shutdown), so a standby takes over at once.

        Only this worker's own lease is touched; True when it held it.
        """
        return self.store.release_lease(self.name, self.holder, now=self._clock())

    def current(self) -> LeaseState | None:
        """The lease row (whoever holds it, expired or not), or None before anyone took it."""
        return self.store.lease(self.name)

    def held_by_me(self) -> bool:
        """Whether the row says this worker holds an unexpired lease (a read, no renewal)."""
        state = self.current()
        return (
            state is not None and state.holder == self.holder and state.expires_at >= self._clock()
        )
