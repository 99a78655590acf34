"""The sync's pipeline snapshot: written after an `ok` sync, pruned, never fatal; the report's
window filled from history when a report asks (not by the sync)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from crmsync.app import snapshots as hook
from crmsync.app.snapshots import fill_window, take_snapshot
from crmsync.app.sync import sync
from crmsync.config.report import ReportSettings
from crmsync.errors import QuotaStop
from crmsync.sandbox import Sandbox
from crmsync.store import Store, StoreError
from crmsync.store.schema import pipeline_snapshot_days
from crmsync.store.snapshots import read_as_of, snapshot_days
from tests.crm import connector
from tests.store.builders import CONN, NOW, OBJ, opp
from tests.store.test_snapshots import add_episode

CRMS = ["salesforce", "hubspot"]


def _open_keys(store: Store, connection: str) -> set[str]:
    """The connection's open live deals as stored, read apart from the snapshot code."""
    return {
        key
        for key, is_closed in store.iter_opportunity_values(connection, ["key", "is_closed"])
        if not is_closed
    }


@pytest.mark.parametrize("crm", CRMS)
def test_a_sync_writes_todays_snapshot_and_the_report_fills_the_window(
    sandbox: Sandbox, store: Store, crm: str
) -> None:
    """After an `ok` sync: today's rows are the open deals, and no other day (the sync does
    not backfill); filling the report's window rebuilds the days before today from history;
    a second sync the same day rewrites today only."""
    settings = ReportSettings(weeks=2)
    before = datetime.now(UTC).date()
    conn = connector(sandbox, crm)
    summary = sync(store, conn, snapshots=settings)
    today = datetime.now(UTC).date()
    assert summary.status == "ok" and summary.messages == []
    days = snapshot_days(store, [conn.connection], today - timedelta(days=30), today)
    assert len(days) == 1 and days[0] in (before, today)
    today = days[0]
    rows = read_as_of(store, today, [conn.connection])
    assert {r.key for r in rows} == _open_keys(store, conn.connection)
    assert {r.origin for r in rows} == {"sync"}

    filled = fill_window(store, conn.connection, settings, stages=conn.mapping.stages, today=today)
    assert filled > 0
    days = snapshot_days(store, [conn.connection], today - timedelta(days=30), today)
    assert days == [today - timedelta(days=n) for n in range(14, -1, -1)]
    assert {r.origin for r in read_as_of(store, today, [conn.connection])} == {"sync"}
    past = read_as_of(store, today - timedelta(days=1), [conn.connection])
    assert past and {r.origin for r in past} == {"backfill"}
    again = fill_window(store, conn.connection, settings, stages=conn.mapping.stages, today=today)
    assert again == 0  # nothing missing: nothing rebuilt

    assert sync(store, connector(sandbox, crm), snapshots=settings).status == "ok"
    assert snapshot_days(store, [conn.connection], today - timedelta(days=30), today) == days
    assert {r.key for r in read_as_of(store, today, None)} == _open_keys(store, conn.connection)


def test_a_sync_without_settings_or_not_ok_takes_no_snapshot(
    sandbox: Sandbox, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No `report` settings: no snapshot; a sync stopped by its quota takes none either."""
    sync(store, connector(sandbox, "salesforce"))
    assert snapshot_days(store, None, date.min, date.max) == []

    def stop(_summary: Any) -> None:
        raise QuotaStop("out of quota")

    stopped = sync(store, connector(sandbox, "hubspot"), snapshots=ReportSettings(), progress=stop)
    assert stopped.status == "stopped"
    assert snapshot_days(store, None, date.min, date.max) == []


@pytest.mark.parametrize("error", [StoreError("store gone: disk full"), RuntimeError("a bug")])
def test_a_failing_snapshot_is_logged_and_the_sync_stands(
    sandbox: Sandbox, store: Store, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """The snapshot's failure is logged as snapshot.failed and named in the sync's messages;
    the sync stays `ok`, its records, cursor and run kept."""

    def broken(*_args: Any, **_kwargs: Any) -> int:
        raise error

    monkeypatch.setattr(hook, "write_day", broken)
    conn = connector(sandbox, "salesforce")
    with capture_logs() as logs:
        summary = sync(store, conn, snapshots=ReportSettings())
    assert summary.status == "ok"
    failed = [e for e in logs if e["event"] == "snapshot.failed"]
    assert len(failed) == 1
    assert failed[0]["connection"] == conn.connection and str(error) in failed[0]["error"]
    assert failed[0]["log_level"] == "error"
    assert any(
        "saving today's pipeline snapshot failed" in m and str(error) in m for m in summary.messages
    )
    assert store.runs(conn.connection, limit=1)[0]["status"] == "ok"
    assert store.get_cursor(conn.connection, conn.object_name) is not None
    assert store.count(conn.connection) == summary.inserted > 0


def test_missed_days_are_filled_and_old_ones_pruned(store: Store) -> None:
    """Filling the window rebuilds the days before the first snapshot; days missed while
    crmsync was down are filled the next time; a `since` further back reaches further, within
    the retention; days past the retention go at the next snapshot."""
    store.apply_batch(CONN, OBJ, opportunities=[opp("006A"), opp("006B")], observed_at=NOW)
    settings = ReportSettings(weeks=1, snapshot_retention_days=10)
    messages: list[str] = []
    today = NOW.date()
    assert take_snapshot(store, CONN, settings, stages=None, now=NOW, messages=messages)
    assert snapshot_days(store, [CONN], date.min, date.max) == [today]
    assert fill_window(store, CONN, settings, stages=None, today=today) > 0
    window = [today - timedelta(days=n) for n in range(7, -1, -1)]
    assert snapshot_days(store, [CONN], date.min, date.max) == window
    later = NOW + timedelta(days=5)  # four days without a sync
    assert take_snapshot(store, CONN, settings, stages=None, now=later, messages=messages)
    assert fill_window(store, CONN, settings, stages=None, today=later.date()) > 0
    days = snapshot_days(store, [CONN], date.min, date.max)
    assert days == [later.date() - timedelta(days=n) for n in range(9, -1, -1)]  # 10 kept
    assert {r.origin for r in read_as_of(store, today + timedelta(days=2), [CONN])} == {"backfill"}
    assert messages == []


def test_a_since_further_back_fills_further_within_the_retention(store: Store) -> None:
    """A report asked from further back than `report.weeks` gets those days rebuilt too, but
    never past the retention."""
    store.apply_batch(CONN, OBJ, opportunities=[opp("006A")], observed_at=NOW)
    settings = ReportSettings(weeks=1, snapshot_retention_days=20)
    today = NOW.date()
    fill_window(store, CONN, settings, stages=None, today=today, since=today - timedelta(days=12))
    assert snapshot_days(store, [CONN], date.min, date.max)[0] == today - timedelta(days=12)
    fill_window(store, CONN, settings, stages=None, today=today, since=today - timedelta(days=90))
    assert snapshot_days(store, [CONN], date.min, date.max)[0] == today - timedelta(days=19)


def _written_at(store: Store, day: date) -> datetime | None:
    with store.reading("test") as conn:
        return conn.scalar(
            sa.select(pipeline_snapshot_days.c.written_at).where(
                pipeline_snapshot_days.c.connection == CONN, pipeline_snapshot_days.c.day == day
            )
        )


def test_a_sync_that_changed_nothing_leaves_todays_snapshot(store: Store) -> None:
    """No deal changed and the findings as they were: today's snapshot is not rewritten; a
    changed deal or a new finding rewrites it."""
    store.apply_batch(CONN, OBJ, opportunities=[opp("006A"), opp("006B")], observed_at=NOW)
    settings = ReportSettings(weeks=1)
    messages: list[str] = []
    take_snapshot(store, CONN, settings, stages=None, now=NOW, messages=messages)
    first = _written_at(store, NOW.date())
    assert first is not None
    later = NOW + timedelta(hours=1)
    take_snapshot(store, CONN, settings, stages=None, now=later, messages=messages, changed=False)
    assert _written_at(store, NOW.date()) == first
    take_snapshot(store, CONN, settings, stages=None, now=later, messages=messages, changed=True)
    second = _written_at(store, NOW.date())
    assert second is not None and second > first
    add_episode(store, f"{CONN}:006A")
    take_snapshot(store, CONN, settings, stages=None, now=later, messages=messages, changed=False)
    assert [r.open_findings for r in read_as_of(store, NOW.date(), [CONN])] == [1, 0]
    assert messages == []
