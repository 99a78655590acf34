"""The `report:` block of the config: daily pipeline snapshots and the pipeline review report.

Every key has a default, so a config without `report:` keeps two years of snapshots and lets
`crmsync run` rebuild the report served at `/report` every morning.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from crmsync.config.types import Cron, Whole
from crmsync.files import FileModel


class ReportSettings(FileModel):
    """Snapshots kept for the pipeline review, and how the service rebuilds its report."""

    # One row per open deal per day is kept this long (default two years), then pruned.
    snapshot_retention_days: Whole = Field(default=730, ge=7, le=36_500)
    # When `crmsync run` rebuilds the report it serves at /report (cron, service timezone).
    schedule: Cron = "0 6 * * *"
    # The report's period when `--since` is not given: this many weeks back from today.
    weeks: Whole = Field(default=13, ge=1, le=520)
    # Optional quota file (CSV: owner or team, period start, period end, amount, currency);
    # without one the report leaves coverage out. Relative paths resolve from the config file.
    quota_file: Path | None = None
