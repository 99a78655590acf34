"""The `service:` block of the config: how `crmsync run` schedules, leases and reports.

Every key has a default, so a config without `service:` runs the service as documented. The
`*_interval_seconds` keys are a testing and development aid: when set, they replace the cron
schedules of connections and workflows with a plain interval, which cron cannot express below a
minute.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from crmsync.config.types import Number, Whole
from crmsync.files import FileModel

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


class HttpSettings(FileModel):
    """Where the health and metrics endpoint listens; port 0 picks a free port (logged)."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: Whole = Field(default=9464, ge=0, le=65535)
    enabled: bool = True

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        """An IP address, or a host name that is not a malformed address (`999.1.1.1`)."""
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
        numeric = re.fullmatch(r"[\d.]+", value) is not None
        if numeric or len(value) > 253 or not re.fullmatch(rf"{_LABEL}(\.{_LABEL})*", value):
            raise ValueError(
                "must be an IP address or a host name (like 127.0.0.1, 0.0.0.0 or localhost), "
                f"not {value!r}"
            )
        return value


class ServiceSettings(FileModel):
    """Settings of the long-running worker (`crmsync run`)."""

    http: HttpSettings = Field(default_factory=HttpSettings)
    # The time zone of the connections' `sync.schedule` crons (workflows name their own).
    timezone: str = "UTC"
    # How long a worker's lease on the jobs lasts without renewal; it renews every third of it.
    lease_seconds: Number = Field(default=30.0, ge=1.0, le=3600.0)
    # The lease row's name: workers sharing a database and a lease name run one at a time.
    lease_name: str = Field(default="crmsync-service", min_length=1)
    # A run that could not start on time (busy, clock jump) still starts within this many
    # seconds; later, it is skipped until its next time. Missed runs are merged into one.
    misfire_grace_seconds: Whole = Field(default=600, ge=1, le=86_400)
    # Jobs that may run at the same time (keep 1 with SQLite: one writer at a time).
    max_parallel_jobs: Whole = Field(default=1, ge=1, le=32)
    # /readyz fails when a connection's last good sync is older than this many intervals.
    stale_after_intervals: Number = Field(default=3.0, gt=0, le=1000)
    # How often the workflow folder is checked for new, removed or rescheduled files.
    workflow_rescan_seconds: Number = Field(default=60.0, ge=1.0, le=86_400)
    # Testing and development only: replace the cron schedules with these intervals.
    sync_interval_seconds: Number | None = Field(default=None, gt=0, le=86_400)
    workflow_interval_seconds: Number | None = Field(default=None, gt=0, le=86_400)
    # --- several workers on a PostgreSQL store (docs/SCALING.md) ---
    # How workers share the jobs. queue: any number of equal workers take jobs from a shared
    # queue (PostgreSQL only). lease: one worker runs every job, the others stand by. auto: queue
    # on PostgreSQL, lease on SQLite.
    scheduler: Literal["auto", "queue", "lease"] = "auto"
    # How often the tick looks for due jobs and queues them (one tick a period, any worker).
    tick_seconds: Whole = Field(default=15, ge=1, le=3600)
    # A worker whose heartbeat is older than this is taken for dead: its jobs go back to the queue.
    stalled_after_seconds: Whole = Field(default=60, ge=15, le=86_400)
    # After a stop for quota, jobs on that org or portal wait this long before trying again.
    quota_recheck_seconds: Whole = Field(default=3600, ge=1, le=86_400)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name such as America/New_York or UTC)"
            ) from None
        return value
