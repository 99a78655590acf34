"""Pipeline snapshots: a day's open deals written from the store, read back as of a day, pruned."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crmsync.store import Store
from crmsync.store.schema import episodes
from crmsync.store.snapshots import (
    last_day,
    prune,
    read_as_of,
    snapshot_days,
    still_current,
    write_day,
)
from tests.store.builders import CONN, NOW, OBJ, opp

TODAY = NOW.date()


def add_episode(
    store: Store,
    key: str,
    *,
    rule: str = "r1",
    workflow: str = "wf",
    state: str = "open",
    opened_at: datetime = NOW - timedelta(days=3),
    resolved_at: datetime | None = None,
) -> None:
    """One finding of a workflow's rule on a deal, written as the write-back keeps it."""
    values: dict[str, Any] = {
        "workflow": workflow,
        "rule": rule,
        "opp_key": key,
        "connection": key.split(":")[0],
        "native_id": key.split(":", 1)[1],
        "owner_id": "005A",
        "state": state,
        "occurrence": 1,
        "opened_at": opened_at,
        "last_seen_at": opened_at,
        "resolved_at": resolved_at,
        "reminders": 0,
    }
    with store.writing("test episode") as conn:
        conn.execute(sa.insert(episodes).values(**values))


def test_write_day_takes_open_deals_with_their_open_findings(store: Store) -> None:
    """Only open, live deals are written, each with its open findings of every workflow."""
    store.apply_batch(
        CONN,
        OBJ,
        opportunities=[
            opp("006A", amount=Decimal("1234.56"), probability=20.0, currency="EUR"),
            opp("006B", stage="Closed Won", stage_canonical="closed_won", is_closed=True),
            opp("006C"),
            opp("006D", pipeline="renewals"),
        ],
        deleted_ids=["006C"],
        observed_at=NOW,
    )
    store.apply_batch("hs", "deals", opportunities=[opp("9", connection="hs")], observed_at=NOW)
    add_episode(store, f"{CONN}:006A", rule="r1")
    add_episode(store, f"{CONN}:006A", rule="r2", workflow="other")
    add_episode(store, f"{CONN}:006A", rule="r3", state="resolved", resolved_at=NOW)
    add_episode(store, f"{CONN}:006B", rule="r1")

    assert write_day(store, CONN, TODAY) == 2
    rows = read_as_of(store, TODAY, [CONN])
    assert [r.key for r in rows] == [f"{CONN}:006A", f"{CONN}:006D"]
    a, d = rows
    assert (a.amount, a.currency, a.probability, a.open_findings) == (
        Decimal("1234.56"),
        "EUR",
        20.0,
        2,
    )
    assert (a.stage, a.stage_canonical, a.owner_id, a.close_date) == (
        "Prospecting",
        "qualified",
        "005A",
        (NOW + timedelta(days=60)).date(),
    )
    assert (a.day, a.connection, a.origin) == (TODAY, CONN, "sync")
    assert (d.pipeline, d.open_findings) == ("renewals", 0)
    assert read_as_of(store, TODAY, ["hs"]) == []  # another connection is another snapshot


def test_the_days_last_write_wins(store: Store) -> None:
    """Writing the same day again replaces it: a deal closed later that day is gone from it,
    a changed amount is the new one, a new finding counts; other days are untouched."""
    store.apply_batch(CONN, OBJ, opportunities=[opp("006A"), opp("006B")], observed_at=NOW)
    yesterday = TODAY - timedelta(days=1)
    write_day(store, CONN, yesterday)
    write_day(store, CONN, TODAY)
    later = NOW + timedelta(hours=3)
    store.apply_batch(
        CONN,
        OBJ,
        opportunities=[
            opp("006A", modified_at=later, amount=Decimal("5")),
            opp("006B", modified_at=later, stage_canonical="closed_lost", is_closed=True),
        ],
        observed_at=later,
    )
    add_episode(store, f"{CONN}:006A")
    assert write_day(store, CONN, TODAY) == 1
    today = read_as_of(store, TODAY, None)
    assert [(r.key, r.amount, r.open_findings) for r in today] == [
        (f"{CONN}:006A", Decimal("5"), 1)
    ]
    add_episode(store, f"{CONN}:006A", rule="r2")
    write_day(store, CONN, TODAY)  # only the count changed
    assert [r.open_findings for r in read_as_of(store, TODAY, None)] == [2]
    before = read_as_of(store, yesterday, None)
    assert [(r.key, r.amount) for r in before] == [
        (f"{CONN}:006A", Decimal("1000.00")),
        (f"{CONN}:006B", Decimal("1000.00")),
    ]


def test_read_as_of_takes_each_connections_latest_day_on_or_before(store: Store) -> None:
    """Per connection, the latest snapshot day not after the asked day; none before the first."""
    store.apply_batch(CONN, OBJ, opportunities=[opp("006A")], observed_at=NOW)
    store.apply_batch("hs", "deals", opportunities=[opp("9", connection="hs")], observed_at=NOW)
    d1, d3, d5 = (TODAY - timedelta(days=n) for n in (5, 3, 1))
    write_day(store, CONN, d1)
    write_day(store, "hs", d3)
    write_day(store, CONN, d5)
    assert {(r.connection, r.day) for r in read_as_of(store, TODAY, None)} == {
        (CONN, d5),
        ("hs", d3),
    }
    assert {(r.connection, r.day) for r in read_as_of(store, d3, None)} == {(CONN, d1), ("hs", d3)}
    assert [(r.connection, r.day) for r in read_as_of(store, d3 - timedelta(1), None)] == [
        (CONN, d1)
    ]
    assert read_as_of(store, d1 - timedelta(days=1), None) == []
    assert snapshot_days(store, None, d1, TODAY) == [d1, d3, d5]
    assert snapshot_days(store, ["hs"], d1, TODAY) == [d3]
    assert snapshot_days(store, [CONN], d1 + timedelta(1), d5 - timedelta(1)) == []
    assert last_day(store, CONN) == d5
    assert last_day(store, CONN, until=d3) == d1
    assert last_day(store, "nowhere") is None


def test_a_day_without_open_deals_is_a_snapshot_too(store: Store) -> None:
    """A day on which every deal is closed reads as empty, not as the day before it."""
    store.apply_batch(CONN, OBJ, opportunities=[opp("006A")], observed_at=NOW)
    write_day(store, CONN, TODAY - timedelta(days=1))
    later = NOW + timedelta(hours=1)
    closed = opp("006A", modified_at=later, stage_canonical="closed_won", is_closed=True)
    store.apply_batch(CONN, OBJ, opportunities=[closed], observed_at=later)
    assert write_day(store, CONN, TODAY) == 0
    assert read_as_of(store, TODAY, [CONN]) == []
    assert snapshot_days(store, [CONN], TODAY, TODAY) == [TODAY]


def test_prune_drops_days_older_than_the_kept_ones(store: Store) -> None:
    """Days up to `today - keep_days` go, of every connection or of one; the rest stay."""
    store.apply_batch(CONN, OBJ, opportunities=[opp("006A"), opp("006B")], observed_at=NOW)
    store.apply_batch("hs", "deals", opportunities=[opp("9", connection="hs")], observed_at=NOW)
    for n in (0, 6, 7, 30):
        write_day(store, CONN, TODAY - timedelta(days=n))
        write_day(store, "hs", TODAY - timedelta(days=n))
    assert prune(store, keep_days=7, today=TODAY, connection="hs") == 2
    assert snapshot_days(store, ["hs"], date.min, TODAY) == [
        TODAY - timedelta(days=6),
        TODAY,
    ]
    assert len(snapshot_days(store, [CONN], date.min, TODAY)) == 4
    assert prune(store, keep_days=7, today=TODAY) == 4  # two days of two deals
    assert prune(store, keep_days=7, today=TODAY) == 0
    assert snapshot_days(store, None, date.min, TODAY) == [TODAY - timedelta(days=6), TODAY]


def test_a_day_still_holds_until_a_finding_or_a_run_may_have_changed_it(store: Store) -> None:
    """A sync's snapshot holds while the findings are as they were and no sync run that began
    after it stored a change or ended other than ok; a day not written never does."""
    store.apply_batch(CONN, OBJ, opportunities=[opp("006A")], observed_at=NOW)
    assert not still_current(store, CONN, TODAY)
    write_day(store, CONN, TODAY)
    assert still_current(store, CONN, TODAY)
    add_episode(store, f"{CONN}:006A")
    assert not still_current(store, CONN, TODAY)
    write_day(store, CONN, TODAY)
    assert still_current(store, CONN, TODAY)
    with store.writing("resolve") as conn:
        conn.execute(sa.update(episodes).values(state="resolved", resolved_at=NOW))
    assert not still_current(store, CONN, TODAY)
    write_day(store, CONN, TODAY)
    quiet = store.start_run(CONN, OBJ, "incremental", datetime.now(UTC))
    store.finish_run(quiet, status="ok", finished_at=datetime.now(UTC))
    assert still_current(store, CONN, TODAY)  # a run that stored nothing changes nothing
    running = store.start_run(CONN, OBJ, "incremental", datetime.now(UTC))
    assert still_current(store, CONN, TODAY)  # the run asking is still running
    store.finish_run(running, status="failed", finished_at=datetime.now(UTC), error="x")
    assert not still_current(store, CONN, TODAY)  # it may have stored pages before failing
    write_day(store, CONN, TODAY)
    assert still_current(store, CONN, TODAY)
    busy = store.start_run(CONN, OBJ, "incremental", datetime.now(UTC))
    store.finish_run(busy, status="ok", finished_at=datetime.now(UTC), upserted=3)
    assert not still_current(store, CONN, TODAY)
    assert not still_current(store, "hs", TODAY)
