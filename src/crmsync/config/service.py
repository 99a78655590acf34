"""The `service:` block of the config: how `crmsync run` schedules, leases and reports.

Every key has a default, so a config without `service:` runs the service as documented. The
`*_interval_seconds` keys are a testing and development aid: when set, they replace the cron
schedules of connections and workflows with a plain interval, which cron cannot express below a
minute.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from crmsync.files import FileModel


class HttpSettings(FileModel):
    """Where the health and metrics endpoint listens; port 0 picks a free port (logged)."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=9464, ge=0, le=65535)
    enabled: bool = True


class ServiceSettings(FileModel):
    """Settings of the long-running worker (`crmsync run`)."""

    http: HttpSettings = Field(default_factory=HttpSettings)
    # The time zone of the connections' `sync.schedule` crons (workflows name their own).
    timezone: str = "UTC"
    # How long a worker's lease on the jobs lasts without renewal; it renews every third of it.
    lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    # The lease row's name: workers sharing a database and a lease name run one at a time.
    lease_name: str = Field(default="crmsync-service", min_length=1)
    # A run that could not start on time (busy, clock jump) still starts within this many
    # seconds; later, it is skipped until its next time. Missed runs are merged into one.
    misfire_grace_seconds: int = Field(default=600, ge=1)
    # Jobs that may run at the same time (keep 1 with SQLite: one writer at a time).
    max_parallel_jobs: int = Field(default=1, ge=1, le=32)
    # /readyz fails when a connection's last good sync is older than this many intervals.
    stale_after_intervals: float = Field(default=3.0, gt=0)
    # How often the workflow folder is checked for new, removed or rescheduled files.
    workflow_rescan_seconds: float = Field(default=60.0, ge=1.0)
    # Testing and development only: replace the cron schedules with these intervals.
    sync_interval_seconds: float | None = Field(default=None, gt=0)
    workflow_interval_seconds: float | None = Field(default=None, gt=0)

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
