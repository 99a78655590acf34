"""What /readyz answers: whether this worker is fit to serve, check by check.

The database must answer; the lease loop must have reached it within a lease's duration; and
while this worker runs the jobs, each scheduled connection's last good sync must be younger than
`stale_after_intervals` of its schedule's longest gap (or the worker only just took over).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crmsync.config import ServiceSettings
from crmsync.store import Store, StoreError


@dataclass(frozen=True)
class LeaseStatus:
    """The worker's lease as its loop last saw it (monotonic times)."""

    holder: str
    valid: bool  # this worker holds the lease, certainly, now
    last_tick: float | None  # when the lease loop last reached the database
    active_since: float  # when this worker last took the lease
    seen: Mapping[str, Any] = field(default_factory=dict)  # the row as a standby last saw it


def readiness(
    store: Store,
    settings: ServiceSettings,
    lease: LeaseStatus,
    sync_periods: Mapping[str, float],
) -> tuple[bool, dict[str, Any]]:
    """Whether the worker is fit to serve: the checks, each with `ok` and its details."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        store.ping()
        checks["database"] = {"ok": True}
    except StoreError as e:
        checks["database"] = {"ok": False, "error": str(e)}
    lease_seconds = settings.lease_seconds
    fresh = lease.last_tick is not None and time.monotonic() - lease.last_tick <= lease_seconds
    role = "active" if lease.valid else "standby"
    checks["lease"] = {"ok": fresh, "role": role, "holder": lease.holder}
    if role == "standby":
        checks["lease"]["active_holder"] = lease.seen.get("holder")
        checks["lease"]["active_until"] = lease.seen.get("expires_at")
    if role == "active" and checks["database"]["ok"]:
        now = datetime.now(UTC)
        factor = settings.stale_after_intervals
        for connection, period in sorted(sync_periods.items()):
            window = factor * period
            last = store.last_successful_sync(connection)
            age = (now - last).total_seconds() if last is not None else None
            starting = time.monotonic() - lease.active_since <= window
            ok = (age is not None and age <= window) or starting
            checks[f"sync:{connection}"] = {
                "ok": ok,
                "last_success": last.isoformat() if last else None,
                "age_seconds": round(age, 1) if age is not None else None,
                "max_age_seconds": window,
            }
    failed = sorted(name for name, check in checks.items() if not check["ok"])
    ready = not failed
    return ready, {
        "status": "ready" if ready else "not ready",
        "role": role,
        "failed": failed,
        "checks": checks,
    }
