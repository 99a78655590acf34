"""The per-connection lock of `apply` and `cycle`: one apply sends a connection's outbox at a
time; a killed one frees it (an expiry, or its process found gone on this machine)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import structlog

from crmsync.store import Store

__all__ = ["LOCK_HOLD_SECONDS", "LOCK_POLL_SECONDS", "LOCK_WAIT_SECONDS", "ApplyLock"]

log = structlog.get_logger("crmsync.actions")

LOCK_WAIT_SECONDS = 60.0  # how long an apply waits for another one on the same connection
LOCK_HOLD_SECONDS = 600.0  # a lock's expiry, renewed while sending (a killed apply frees it)
LOCK_POLL_SECONDS = 0.5


class ApplyLock:
    """The per-connection lock of `apply` and `cycle`: the store's lease `apply:<connection>`,
    taken with an expiry (so a killed process frees it), renewed while sending (checked before
    each batch, renewed once a tenth of the hold has passed: `apply.renewing`), and released at
    the end. A second apply waits a bounded time, then skips the
    connection (logged as `apply.locked`)."""

    def __init__(self, store: Store, connection: str, *, hold_seconds: float) -> None:
        self.store = store
        self.connection = connection
        self.name = f"apply:{connection}"
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.hold = timedelta(seconds=hold_seconds)
        self.held_by: str | None = None

    def _take(self) -> bool:
        now = datetime.now(UTC)  # the real clock: leases outlive a planning `now`
        return self.store.take_lease(self.name, self.holder, now=now, expires_at=now + self.hold)

    def acquire(self, *, wait_seconds: float) -> bool:
        """Take the lock, waiting up to `wait_seconds` for its holder; False when it stayed
        held (logged with its holder)."""
        deadline = time.monotonic() + wait_seconds
        waited = False
        while True:
            if self._take():
                if waited:
                    log.info("apply.lock_taken", connection=self.connection, holder=self.holder)
                return True
            lease = self.store.lease(self.name)
            self.held_by = lease.holder if lease is not None else None
            if self.held_by is not None and _dead_here(self.held_by):
                # its process on this machine is gone (killed): free the lock now rather than
                # at its expiry; of several waiters doing this, the lease lets one take it
                log.info("apply.lock_freed", connection=self.connection, holder=self.held_by)
                self.store.release_lease(self.name, self.held_by, now=datetime.now(UTC))
                continue
            if time.monotonic() >= deadline:
                log.warning(
                    "apply.locked",
                    connection=self.connection,
                    holder=self.held_by,
                    waited_seconds=round(wait_seconds, 1),
                    detail="another apply holds this connection; it is skipped this time",
                )
                return False
            if not waited:
                log.info("apply.waiting", connection=self.connection, holder=self.held_by)
                waited = True
            time.sleep(min(LOCK_POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def renew(self) -> bool:
        """Extend the lock; False when another apply took it after it expired."""
        return self._take()

    def release(self) -> None:
        self.store.release_lease(self.name, self.holder, now=datetime.now(UTC))


def _dead_here(holder: str) -> bool:
    """Whether a lock holder (`host:pid:nonce`) is a process of this machine that has ended."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (owned by another user)
        return False
    return False
