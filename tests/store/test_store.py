"""Reading the store back: records, streaming, history, runs and set-aside listings."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta
from decimal import Decimal

import pytest

from crmsync.model.records import HistoryRow
from crmsync.store import Store
from tests.store.builders import CONN, NOW, OBJ, opp


def test_get_unknown_key_is_none(store: Store) -> None:
    """get() of a key never stored gives None."""
    assert store.get("sf:nope") is None


def test_iter_opportunities_order_filters_and_deleted(store: Store) -> None:
    """Records stream in key order (code point order on both backends), filtered as asked."""
    ids = ["b", "a", "B", "a-1", "a_1", "ä", "Z9"]
    store.apply_batch(CONN, OBJ, opportunities=[opp(i) for i in ids], observed_at=NOW)
    store.apply_batch("hs", "deals", opportunities=[opp("1", connection="hs")], observed_at=NOW)
    store.apply_batch(CONN, OBJ, deleted_ids=["a"], observed_at=NOW)

    keys = [o.key for o in store.iter_opportunities(CONN, batch_size=2)]
    assert keys == sorted(f"{CONN}:{i}" for i in ids if i != "a")
    with_deleted = [o.native_id for o in store.iter_opportunities(CONN, include_deleted=True)]
    assert with_deleted == sorted(ids)
    assert [o.key for o in store.iter_opportunities()] == ["hs:1", *keys]
    assert store.count() == 7
    assert store.count("hs") == 1


def test_streamed_records_equal_the_typed_reads(store: Store) -> None:
    """The stream decodes its rows itself (for speed): it must give exactly what `get` gives,
    values and types, for every kind of value, and hand out custom dicts nobody shares."""
    full = opp(
        "full",
        amount=Decimal("12345.678900"),
        probability=37.5,
        last_activity_at=NOW - timedelta(days=3, microseconds=7),
        stage_entered_at=NOW - timedelta(days=9),
        owner_active=False,
        budget_confirmed=True,
        custom={"flags": "stale;nonext", "days": 4.0, "tags": ["a", "b"], "n": None},
    )
    same_custom = [opp(f"c{i}", custom={"flags": "x", "k": 1}) for i in range(3)]
    empty = opp(
        "empty",
        amount=None,
        close_date=None,
        created_at=None,
        owner_id=None,
        stage=None,
        stage_canonical=None,
    )
    store.apply_batch(CONN, OBJ, opportunities=[full, empty, *same_custom], observed_at=NOW)

    streamed = list(store.iter_opportunities(CONN))
    assert len(streamed) == 5
    for got in streamed:
        typed = store.get(got.key)
        assert got == typed
        for name in ("amount", "close_date", "modified_at", "created_at", "last_activity_at"):
            assert type(getattr(got, name)) is type(getattr(typed, name)), name
        if got.modified_at is not None:
            assert got.modified_at.utcoffset() == timedelta(0)
    by_id = {o.native_id: o for o in streamed}
    assert by_id["full"].amount == Decimal("12345.678900")
    assert str(by_id["full"].amount) == "12345.678900"
    for changed, other in (("c0", "c1"), ("c1", "c2"), ("c2", "c0")):
        by_id[changed].custom["flags"] = "changed"
        assert by_id[other].custom == {"flags": "x", "k": 1}
        by_id[changed].custom["flags"] = "x"
    assert [o.custom for o in store.iter_opportunities(CONN)][:3] == [{"flags": "x", "k": 1}] * 3


def test_writes_proceed_while_iterating(store: Store) -> None:
    """A batch can be written while an iteration is still open (rules writing as they read)."""
    store.apply_batch(
        CONN, OBJ, opportunities=[opp(f"{i:03d}") for i in range(10)], observed_at=NOW
    )
    stream = store.iter_opportunities(CONN, batch_size=3)
    first = next(stream)
    store.apply_batch(CONN, OBJ, opportunities=[opp("999")], observed_at=NOW)
    rest = list(stream)
    assert first.native_id == "000"
    assert len(rest) in (9, 10)  # a snapshot, or a cursor that also sees the new row
    assert store.count(CONN) == 11


def test_iteration_memory_stays_flat(store: Store) -> None:
    """Streaming holds about one batch in memory, far less than the whole table."""
    big = "y" * 4000
    store.apply_batch(
        CONN, OBJ, opportunities=[opp(f"{i:05d}", pain=big) for i in range(1500)], observed_at=NOW
    )
    tracemalloc.start()
    try:
        count = sum(1 for _ in store.iter_opportunities(CONN, batch_size=100))
        streamed = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        everything = list(store.iter_opportunities(CONN, batch_size=100))
        listed = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == len(everything) == 1500
    assert streamed < listed / 3


def test_history_order_and_filters(store: Store) -> None:
    """history() is oldest first; iter_history() streams by key then time, filtered as asked."""
    t = [NOW - timedelta(days=d) for d in (3, 2, 1)]
    rows = [
        HistoryRow("sf:B", "stage", "x", "y", t[1], "crm"),
        HistoryRow("sf:A", "stage", "y", "z", t[2], "crm"),
        HistoryRow("sf:A", "amount", None, "5", t[1], "crm"),
        HistoryRow("sf:A", "stage", None, "y", t[0], "crm"),
    ]
    store.apply_batch(CONN, OBJ, history=rows, observed_at=NOW)
    other = HistoryRow("s_:A", "stage", None, "q", t[0], "crm")  # "_" must not act as a wildcard
    store.apply_batch("s_", OBJ, history=[other], observed_at=NOW)

    assert store.history("sf:A") == [rows[3], rows[2], rows[1]]
    assert store.history("sf:A", "stage") == [rows[3], rows[1]]
    assert list(store.iter_history(CONN)) == [rows[3], rows[2], rows[1], rows[0]]
    assert list(store.iter_history(CONN, fields=["amount"])) == [rows[2]]
    assert list(store.iter_history("s_")) == [other]
    assert len(list(store.iter_history())) == 5


def test_runs_start_finish_and_list(store: Store) -> None:
    """Runs are recorded as running, finished with counts and duration, listed newest first."""
    first = store.start_run(CONN, OBJ, "full", NOW)
    second = store.start_run("hs", "deals", "incremental", NOW + timedelta(minutes=5))
    store.finish_run(
        first,
        status="ok",
        finished_at=NOW + timedelta(seconds=90),
        fetched=10,
        upserted=9,
        deleted=1,
        set_aside=1,
        api_calls=3,
    )
    runs = store.runs()
    assert [r["id"] for r in runs] == [second, first]
    assert runs[0]["status"] == "running" and runs[0]["finished_at"] is None
    done = runs[1]
    assert done["status"] == "ok" and done["duration_seconds"] == 90.0
    assert (done["fetched"], done["upserted"], done["deleted"], done["set_aside"]) == (10, 9, 1, 1)
    assert done["api_calls"] == 3 and done["error"] is None
    assert done["started_at"] == NOW and done["kind"] == "full" and done["object"] == OBJ
    assert [r["id"] for r in store.runs(CONN)] == [first]
    assert len(store.runs(limit=1)) == 1

    store.finish_run(second, status="failed", finished_at=NOW, error="token expired")
    assert store.runs("hs")[0]["error"] == "token expired"


def test_runs_refuse_unknown_kinds_statuses_and_ids(store: Store) -> None:
    """A misspelt kind or status, or an unknown run id, is a ValueError."""
    with pytest.raises(ValueError, match="kind"):
        store.start_run(CONN, OBJ, "partial", NOW)
    run = store.start_run(CONN, OBJ, "reconcile", NOW)
    with pytest.raises(ValueError, match="status"):
        store.finish_run(run, status="done", finished_at=NOW)
    with pytest.raises(ValueError, match="12345"):
        store.finish_run(12345, status="ok", finished_at=NOW)


def test_abandoned_runs_are_closed_as_failed(store: Store) -> None:
    """Runs left running (their worker was killed) end failed with the reason; finished runs and
    their counts are left alone."""
    done = store.start_run(CONN, OBJ, "full", NOW - timedelta(hours=2))
    store.finish_run(done, status="ok", finished_at=NOW - timedelta(hours=1), fetched=7)
    cut = store.start_run(CONN, OBJ, "incremental", NOW - timedelta(minutes=10))
    other = store.start_run("hs", "deals", "full", NOW - timedelta(minutes=5))

    assert store.close_abandoned_runs(NOW, "interrupted") == 2
    runs = {r["id"]: r for r in store.runs(limit=10)}
    assert (runs[done]["status"], runs[done]["fetched"], runs[done]["error"]) == ("ok", 7, None)
    for run_id, minutes in ((cut, 10), (other, 5)):
        assert runs[run_id]["status"] == "failed"
        assert runs[run_id]["error"] == "interrupted"
        assert runs[run_id]["duration_seconds"] == pytest.approx(minutes * 60)
    assert store.close_abandoned_runs(NOW, "interrupted") == 0


def test_job_runs_keep_the_last_run_of_each_job(store: Store) -> None:
    """One row a job, replaced by each run; unknown jobs have none."""
    assert store.last_job_run("workflow:a") is None
    store.record_job_run(
        "workflow:a", started_at=NOW, finished_at=NOW + timedelta(seconds=3), status="ok"
    )
    later = NOW + timedelta(days=1)
    store.record_job_run("workflow:a", started_at=later, finished_at=later, status="failed")
    store.record_job_run("workflow:b", started_at=NOW, finished_at=NOW, status="ok")
    assert store.last_job_run("workflow:a") == later
    assert store.last_job_run("workflow:b") == NOW
    assert store.last_job_run("workflow:c") is None
