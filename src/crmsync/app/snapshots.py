"""The pipeline snapshot a successful sync takes of its connection, and the past days the
report fills in from history (the pipeline review reads both).

After each sync of a connection's deals that ended `ok` (full, incremental or reconcile), the
connection's open deals are written as the snapshot of today, the UTC date at the sync's end: the
day's last sync wins, so a day's row is the deal as it stood at the end of that day. Days older
than `report.snapshot_retention_days` go. A sync that stored no change leaves today's snapshot
as it is while it still holds.

The days of the report's window (`report.weeks`, within the retention) that have no snapshot,
the days before crmsync ran or while it was stopped, are rebuilt from the stored history by
`fill_window` when a report is built (`crmsync report`, the service's `/report`), not by the
sync: a connection's first sync stays as fast as before, and the work is done once, when
someone asks for the report.

A snapshot that fails is logged (`snapshot.failed`) and named in the sync's messages, and the
sync stays `ok`: its records and cursor are committed, and failing it would make the service
retry a CRM pull that worked. The next sync writes the day again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

import structlog

from crmsync.config import Config, load_mapping
from crmsync.config.report import ReportSettings
from crmsync.errors import describe
from crmsync.store import Store
from crmsync.store.snapshots import backfill, missing_days, prune, still_current, write_day

log = structlog.get_logger("crmsync.app.snapshots")

# what each step does, in the words of the sync's closing lines
DOING = {
    "check": "checking today's pipeline snapshot",
    "write": "saving today's pipeline snapshot",
    "prune": "removing pipeline snapshots past the retention",
}


def take_snapshot(
    store: Store,
    connection: str,
    settings: ReportSettings,
    *,
    stages: Mapping[str, str] | None,
    now: datetime,
    messages: list[str],
    changed: bool = True,
) -> bool:
    """Write today's snapshot of the connection and prune past the retention; True when all
    of it was done. Failures are logged and added to `messages`, never raised.

    A sync that stored no change (`changed` False) writes nothing while today's snapshot
    still holds (`store.snapshots.still_current`): most of a day's syncs, at almost no cost."""
    today = now.date()  # `now` is UTC: the day is the UTC date at the sync's end
    step = "check"
    try:
        if not changed and still_current(store, connection, today):
            log.debug("snapshot.current", connection=connection, day=today.isoformat())
            return True
        step = "write"
        deals = write_day(store, connection, today)
        step = "prune"
        pruned = prune(
            store, keep_days=settings.snapshot_retention_days, today=today, connection=connection
        )
    except Exception as e:
        log.error("snapshot.failed", connection=connection, step=step, error=describe(e))
        messages.append(
            f"pipeline report: {DOING[step]} failed ({e}); the sync itself is saved and the "
            "next one tries again"
        )
        return False
    log.info(
        "snapshot.written",
        connection=connection,
        day=today.isoformat(),
        deals=deals,
        pruned=pruned,
    )
    return True


def window_days(settings: ReportSettings) -> int:
    """How many days before today the report's window reaches (within the retention)."""
    return max(0, min(settings.weeks * 7, settings.snapshot_retention_days - 1))


def fill_window(
    store: Store,
    connection: str,
    settings: ReportSettings,
    *,
    stages: Mapping[str, str] | None,
    today: date,
    since: date | None = None,
) -> int:
    """Rebuild from history the days of the report's window (back to `since` when that is
    earlier, within the retention) that have no snapshot of the connection (a day a sync wrote
    is never touched); the rows written. Store errors raise."""
    window = window_days(settings)
    if since is not None:
        window = max(window, min((today - since).days, settings.snapshot_retention_days - 1))
    missing = missing_days(store, connection, days=window, today=today)
    if not missing:
        return 0
    filled = backfill(store, connection, days=window, today=today, stages=stages)
    log.info(
        "snapshot.backfilled",
        connection=connection,
        days=missing,
        rows=filled,
        until=today.isoformat(),
    )
    return filled


def fill_report_windows(
    store: Store,
    config: Config,
    connections: Sequence[str],
    *,
    now: datetime,
    since: date | None = None,
) -> int:
    """`fill_window` for each of `connections` (all the config's when empty), each with its
    mapping's stages: what a report does before it reads the snapshots."""
    names = list(connections) or [c.name for c in config.connections]
    filled = 0
    for name in names:
        mapping = load_mapping(config.connection(name).mapping)
        filled += fill_window(store, name, config.report, stages=mapping.stages, today=now.date())
    return filled
