"""The connector contract: one set of tests that every connector passes, run against Salesforce
and HubSpot in the sandbox over HTTP through the real client libraries.

Read-only tests share one sandbox per module; tests that change the CRM get one of their own.
API costs are asserted exactly, on the connector's ApiMeter and on the sandbox's own call log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from crmsync.app.sync import sync
from crmsync.connectors.base import Connector, Page, Write
from crmsync.connectors.salesforce_api import parse_stamp
from crmsync.errors import AuthFailed, CrmApiError, CrmUnavailable, InvalidInput, QuotaStop
from crmsync.model.records import Cursor
from crmsync.sandbox import Fault, Sandbox
from crmsync.store import Store
from tests.conftest import NOW, make_sandbox
from tests.connectors.contract import NEW_STAGE, Crm, comparable

SIZE = 40  # opportunities per CRM: one page everywhere, so costs are easy to state
CRMS = ["salesforce", "hubspot"]
STARTED = NOW  # `started_at` for pulls (the connectors take the CRM's clock instead)


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    """One small sandbox for the tests that only read (faults are cleared after each)."""
    sb = make_sandbox(opportunities=SIZE)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(params=CRMS)
def reading(request: pytest.FixtureRequest, shared_sandbox: Sandbox) -> Iterator[Crm]:
    """One CRM of the shared sandbox, its call log reset; the test must not change records."""
    crm = Crm(request.param, shared_sandbox)
    crm.side.calls.reset()
    try:
        yield crm
    finally:
        crm.side.faults.clear()


@pytest.fixture(params=CRMS)
def fresh(request: pytest.FixtureRequest) -> Iterator[Crm]:
    """One CRM of a sandbox of its own, its clock ten minutes past every generated stamp."""
    sb = make_sandbox(opportunities=SIZE)
    try:
        crm = Crm(request.param, sb)
        crm.advance(600)
        yield crm
    finally:
        sb.stop()


def _pull(conn: Connector, cursor: Cursor | None = None) -> list[Page]:
    return list(conn.pull(cursor, started_at=STARTED))


def _last_cursor(pages: list[Page]) -> Cursor | None:
    return next((p.cursor for p in reversed(pages) if p.cursor is not None), None)


def _opps(pages: Iterable[Page]) -> dict[str, Any]:
    return {o.native_id: o for p in pages for o in p.opportunities}


def _deleted(pages: Iterable[Page]) -> set[str]:
    return {i for p in pages for i in p.deleted_ids}


def _next_run(crm: Crm, conn: Connector, **settings: Any) -> Connector:
    """A new connector holding the cache `conn` kept, as the sync engine starts the next run
    (a new login, so the CRM's clock is read afresh)."""
    again = crm.connector(**settings)
    again.load_cache(conn.cache_cursor())
    return again


def _cost(crm: Crm, conn: Connector, expected: int) -> None:
    """The connector counted `expected` calls, and the CRM answered exactly that many."""
    assert conn.meter.calls == expected
    assert crm.side.calls.total() == expected


# ---- check -----------------------------------------------------------------------------
def test_check_accepts_the_shipped_mapping_in_a_constant_few_calls(reading: Crm) -> None:
    """check() passes with the shipped mapping: one describe/properties call (plus the login)."""
    conn = reading.connector()
    conn.check()
    _cost(reading, conn, reading.login_calls + 1)


def test_check_names_a_mapped_field_the_crm_lacks(reading: Crm) -> None:
    """check() refuses a mapping that names a field the CRM does not have, naming the field."""
    conn = reading.connector_with(mapping=reading.mapping_with_missing_field())
    with pytest.raises(InvalidInput, match=f"'{reading.missing_field}'"):
        conn.check()


# ---- pulls -----------------------------------------------------------------------------
def test_full_pull_brings_every_record_normalized(reading: Crm) -> None:
    """A pull without a cursor yields every live record once, normalized, at the minimum cost."""
    conn = reading.connector()
    pages = _pull(conn)
    opps = [o for p in pages for o in p.opportunities]
    assert len(opps) == len(reading.live_ids()) == SIZE
    assert {o.native_id: comparable(o) for o in opps} == reading.expected()
    assert all(o.key == f"{conn.connection}:{o.native_id}" for o in opps)
    assert {o.source for o in opps} == {reading.name}
    assert sum(p.fetched for p in pages) == SIZE
    assert not any(p.set_aside or p.deleted_ids or p.history for p in pages)
    assert _last_cursor(pages) is not None
    # salesforce: login + one queryAll page
    # hubspot: pipelines, owners (live, archived), one list page, the live count, archived list
    _cost(reading, conn, 2 if reading.name == "salesforce" else 6)


def test_incremental_pull_brings_exactly_the_edited_records(fresh: Crm) -> None:
    """After edits, a pull from the last cursor yields just the edited records, with new values."""
    conn = fresh.connector(overlap_seconds=0)
    cursor = _last_cursor(_pull(conn))
    fresh.advance(60)
    edited = fresh.live_ids()[3:6]
    for rid in edited:
        fresh.edit(rid, next_step=f"edited {rid}")
    fresh.advance(2)
    conn = _next_run(fresh, conn, overlap_seconds=0)
    fresh_calls = fresh.side.calls.total()
    pages = _pull(conn, cursor)
    assert {rid: o.next_step for rid, o in _opps(pages).items()} == {
        rid: f"edited {rid}" for rid in edited
    }
    assert _deleted(pages) == set()
    # salesforce: login, one /composite call (the first queryAll page and getDeleted); hubspot:
    # a search and the live count (pipelines and owners cached, the count says none archived)
    assert conn.meter.calls == fresh.side.calls.total() - fresh_calls == 2
    fresh.advance(2)
    conn = _next_run(fresh, conn, overlap_seconds=0)
    assert _opps(_pull(conn, _last_cursor(pages))) == {}  # the new cursor covers the edits


def test_incremental_pull_pages_the_changes_under_a_small_page_size(fresh: Crm) -> None:
    """Many edits read with a small page size arrive complete, each page carrying a cursor."""
    conn = fresh.connector(overlap_seconds=0, page_size=10)
    cursor = _last_cursor(_pull(conn))
    fresh.advance(60)
    edited = fresh.live_ids()[:25]
    for rid in edited:
        fresh.edit(rid, next_step="bulk edit")
    fresh.advance(2)
    pages = _pull(conn, cursor)
    assert sorted(_opps(pages)) == sorted(edited)
    assert all(p.cursor is not None for p in pages if p.opportunities)


def test_changed_since_names_records_edited_after_the_cursor(fresh: Crm) -> None:
    """changed_since gives the records edited after a pull's cursor with their current custom
    values, in one call; without a cursor it cannot tell (None)."""
    conn = fresh.connector(overlap_seconds=0)
    cursor = _last_cursor(_pull(conn))
    fresh.advance(60)
    rid = fresh.live_ids()[7]
    fresh.edit(rid, flags="hot")
    fresh.advance(2)
    assert conn.changed_since(None, ["flags"]) is None
    calls = conn.meter.calls
    assert conn.changed_since(cursor, ["flags"]) == {rid: {"flags": "hot"}}
    assert conn.meter.calls - calls == 1


def test_deleted_records_arrive_as_deletions(fresh: Crm) -> None:
    """A record deleted before a full pull, and one deleted after it, arrive as deleted ids (never
    as records); a record purged for good arrives only where the CRM reports purges."""
    conn = fresh.connector(overlap_seconds=0)
    early, late, purged = fresh.live_ids()[:3]
    fresh.delete(early)
    fresh.advance(1)
    full = _pull(conn)
    assert _deleted(full) == {early}
    assert early not in _opps(full) and len(_opps(full)) == SIZE - 1
    fresh.advance(60)
    fresh.delete(late)
    fresh.delete(purged, hard=True)
    fresh.advance(61)  # getDeleted cuts the seconds of its end: a purge shows a minute on
    pages = _pull(_next_run(fresh, conn, overlap_seconds=0), _last_cursor(full))
    deleted = _deleted(pages)
    assert late in deleted and (purged in deleted) == fresh.pull_sees_hard_deletes
    assert deleted <= {early, late, purged}  # nothing live is reported deleted
    assert not set(_opps(pages)) & {early, late, purged}


# ---- history -----------------------------------------------------------------------------
def test_pull_history_gives_the_crms_own_field_history(reading: Crm) -> None:
    """pull_history without a cursor yields the CRM's field history (Salesforce's
    OpportunityHistory, stage repeats collapsed; HubSpot none, at no cost), origin crm."""
    conn = reading.connector()
    pages = list(conn.pull_history(None))
    rows = [r for p in pages for r in p.history]
    assert {r.origin for r in rows} <= {"crm"}
    assert {r.field for r in rows} <= {"stage", "amount", "close_date"}
    stages: dict[str, list[str | None]] = {}
    for r in rows:
        if r.field == "stage":
            stages.setdefault(r.key, []).append(r.new_value)
    assert stages == reading.stage_history()
    # salesforce: login + one OpportunityHistory query page; hubspot: nothing to ask
    _cost(reading, conn, 2 if reading.name == "salesforce" else 0)


def test_pull_history_from_its_cursor_brings_only_new_changes(fresh: Crm) -> None:
    """After a stage change, pull_history from its last cursor yields that change and nothing
    older than the cursor (rows at its very instant may repeat: the store keeps each once)."""
    conn = fresh.connector(overlap_seconds=0)
    cursor = _last_cursor(list(conn.pull_history(None)))
    fresh.advance(60)
    rid = fresh.live_ids()[5]
    fresh.move_stage(rid)
    fresh.advance(2)
    rows = [r for p in conn.pull_history(cursor) for r in p.history]
    if fresh.name == "hubspot":
        assert cursor is None and rows == []
        return
    assert cursor is not None
    since = parse_stamp(cursor.value)
    assert all(r.changed_at >= since for r in rows)
    assert [(r.key, r.field, r.new_value) for r in rows if r.changed_at > since] == [
        (f"sf:{rid}", "stage", NEW_STAGE["salesforce"])
    ]


def test_a_stage_change_reaches_the_stores_history(fresh: Crm, store: Store) -> None:
    """A sync stores the CRM's own stage history (Salesforce) and, after a stage change, the next
    sync adds exactly that change to the store's history, at the record's modification time."""
    conn = fresh.connector()
    sync(store, conn)
    rid = fresh.live_ids()[5]
    key = f"{conn.connection}:{rid}"
    before = store.history(key, "stage")
    assert [r.new_value for r in before if r.origin == "crm"] == fresh.stage_history().get(key, [])
    fresh.advance(60)
    fresh.move_stage(rid)
    fresh.advance(2)
    sync(store, fresh.connector())
    stored = store.get(key)
    assert stored is not None and stored.stage_canonical == "negotiation"
    new = [r for r in store.history(key, "stage") if r not in before]
    assert [(r.new_value, r.changed_at) for r in new] == [(stored.stage, stored.modified_at)]


# ---- reconcile ---------------------------------------------------------------------------
def test_list_ids_lists_every_live_record_once(reading: Crm) -> None:
    """list_ids yields each live record id exactly once, in one call per page."""
    conn = reading.connector()
    ids = list(conn.list_ids())
    assert sorted(ids) == sorted(reading.live_ids()) and len(ids) == SIZE
    _cost(reading, conn, reading.login_calls + 1)


def test_list_ids_drops_records_deleted_for_good(fresh: Crm) -> None:
    """A record purged from the CRM is no longer listed, which is how a reconcile finds it."""
    conn = fresh.connector()
    before = fresh.live_ids()
    gone = before[2]
    fresh.delete(gone, hard=True)
    assert set(conn.list_ids()) == set(before) - {gone}


def test_reread_returns_the_named_records_in_full(reading: Crm) -> None:
    """reread gives exactly the named records, normalized, in one read call."""
    conn = reading.connector()
    ids = sorted(reading.live_ids())[:5]
    pages = list(conn.reread(ids))
    got = _opps(pages)
    assert sorted(got) == ids
    expected = reading.expected()
    assert {rid: comparable(o) for rid, o in got.items()} == {rid: expected[rid] for rid in ids}
    # salesforce: login + one query; hubspot: one batch read, after pipelines and owners x2
    _cost(reading, conn, 2 if reading.name == "salesforce" else 4)


def test_reconcile_sync_marks_records_purged_from_the_crm(fresh: Crm, store: Store) -> None:
    """A record deleted for good is marked deleted in the store by a reconcile sync."""
    conn = fresh.connector()
    sync(store, conn)
    gone = fresh.live_ids()[4]
    fresh.delete(gone, hard=True)
    fresh.advance(2)
    summary = sync(store, fresh.connector(), reconcile=True)
    assert summary.kind == "reconcile" and summary.deleted == 1
    stored = store.get(f"{conn.connection}:{gone}")
    assert stored is not None and stored.deleted
    assert store.count(conn.connection) == SIZE - 1


# ---- writes ------------------------------------------------------------------------------
def test_flag_writes_go_in_one_batch_call(fresh: Crm) -> None:
    """A batch of flag writes costs one call, each write is confirmed, and the CRM holds them."""
    conn = fresh.connector()
    ids = fresh.live_ids()[:3]
    writes = [
        Write(f"flag-{i}", "flag.write", rid, {"field": "flags", "value": f"v{i}"})
        for i, rid in enumerate(ids)
    ]
    results = conn.write("flag.write", writes)
    assert [(r.key, r.ok, r.crm_id) for r in results] == [
        (w.key, True, w.native_id) for w in writes
    ]
    assert [fresh.flag(rid) for rid in ids] == ["v0", "v1", "v2"]
    assert fresh.side.calls.counts()[fresh.endpoint("flag.write")] == 1
    _cost(fresh, conn, fresh.login_calls + 1)
    fresh.advance(2)
    pulled = _opps(_pull(fresh.connector()))
    assert [pulled[rid].custom["flags"] for rid in ids] == ["v0", "v1", "v2"]


def test_a_batch_larger_than_the_crm_takes_is_refused_before_sending(fresh: Crm) -> None:
    """More writes than `write_batch_size` in one batch raise at once, without a call."""
    conn = fresh.connector()
    rid = fresh.live_ids()[0]
    writes = [
        Write(f"k{i}", "flag.write", rid, {"field": "flags", "value": "x"})
        for i in range(conn.write_batch_size + 1)
    ]
    with pytest.raises(ValueError, match="at most"):
        conn.write("flag.write", writes)
    _cost(fresh, conn, 0)


def _task(key: str, rid: str) -> Write:
    values = {
        "subject": f"Follow up {key}",
        "body": "from the contract suite",
        "due_date": "2026-12-01",
        "due_at": "2026-12-01T09:00:00-05:00",
        "priority": "high",
        "owner_id": None,
    }
    return Write(key, "task.create", rid, values)


def test_created_tasks_are_found_by_their_keys(fresh: Crm) -> None:
    """Tasks created in one batch call sit on their deals with their keys, and find_tasks returns
    their ids by key in one call (keys the CRM does not know are left out)."""
    conn = fresh.connector()
    ids = fresh.live_ids()[:4]
    writes = [_task(f"contract-{i}", rid) for i, rid in enumerate(ids)]
    results = conn.write("task.create", writes)
    assert [(r.key, r.ok) for r in results] == [(w.key, True) for w in writes]
    assert all(r.crm_id for r in results)
    for w, r in zip(writes, results, strict=True):
        task = fresh.task(str(r.crm_id))
        assert (task["deal"], task["key"], task["subject"], task["due"], task["done"]) == (
            w.native_id,
            w.key,
            f"Follow up {w.key}",
            "2026-12-01",
            False,
        )
    assert fresh.side.calls.counts()[fresh.endpoint("task.create")] == 1
    before = conn.meter.calls
    found = conn.find_tasks([w.key for w in writes] + ["contract-never-sent"])
    assert found == {r.key: r.crm_id for r in results}
    assert conn.meter.calls - before == 1
    assert conn.find_tasks([]) == {} and conn.meter.calls - before == 1


def test_tasks_are_completed_and_moved(fresh: Crm) -> None:
    """task.complete marks a task done with crmsync's note; task.due moves another; a call each."""
    conn = fresh.connector()
    rid = fresh.live_ids()[0]
    done_id, moved_id = (
        r.crm_id for r in conn.write("task.create", [_task("a", rid), _task("b", rid)])
    )
    assert done_id and moved_id
    before = conn.meter.calls
    complete = Write("a", "task.complete", rid, {"note": "closed by crmsync"}, task_id=done_id)
    due = Write(
        "b",
        "task.due",
        rid,
        {"due_date": "2026-12-08", "due_at": "2026-12-08T09:00:00-05:00"},
        task_id=moved_id,
    )
    assert [r.ok for r in conn.write("task.complete", [complete])] == [True]
    assert [r.ok for r in conn.write("task.due", [due])] == [True]
    assert conn.meter.calls - before == 2
    assert (fresh.task(done_id)["done"], fresh.task(done_id)["note"]) == (True, "closed by crmsync")
    assert (fresh.task(moved_id)["done"], fresh.task(moved_id)["due"]) == (False, "2026-12-08")


def test_read_tasks_sees_what_reps_did(fresh: Crm) -> None:
    """read_tasks (issue 13, finding 6) answers each live task with whether it is done and when
    it is due, leaves out tasks deleted (to the recycle bin / archive, or for good), and costs
    one call per 200 Salesforce or 100 HubSpot ids."""
    conn = fresh.connector()
    rid = fresh.live_ids()[0]
    size = 200 if fresh.name == "salesforce" else 100
    writes = [_task(f"read-{i}", rid) for i in range(size + 1)]
    ids = [
        str(r.crm_id)
        for start in range(0, len(writes), size)
        for r in conn.write("task.create", writes[start : start + size])
    ]
    done, moved, binned, purged = ids[:4]
    if fresh.name == "salesforce":
        org = fresh.sb.salesforce.org
        org.update("Task", done, {"Status": "Completed"})
        org.update("Task", moved, {"ActivityDate": "2026-12-15"})
        org.delete("Task", binned)
        org.delete("Task", purged, hard=True)
    else:
        portal = fresh.sb.hubspot.portal
        portal.update("tasks", int(done), {"hs_task_status": "COMPLETED"})
        portal.update("tasks", int(moved), {"hs_timestamp": "2026-12-15T09:00:00-05:00"})
        portal.archive("tasks", int(binned))
        portal.archive("tasks", int(purged), hard=True)
    fresh.side.calls.reset()
    before = conn.meter.calls
    states = conn.read_tasks(ids)
    assert conn.meter.calls - before == 2 == fresh.side.calls.total()
    endpoint = "query" if fresh.name == "salesforce" else "tasks.batch.read"
    assert fresh.side.calls.counts()[endpoint] == 2
    assert set(states) == set(ids) - {binned, purged}
    assert states[done].completed and not states[moved].completed
    due = {i: s.due_date or (s.due_at and s.due_at.date()) for i, s in states.items()}
    assert due[moved] == date(2026, 12, 15) and due[ids[4]] == date(2026, 12, 1)
    if fresh.name == "hubspot":
        assert states[ids[4]].due_at == datetime.fromisoformat("2026-12-01T09:00:00-05:00")
    assert conn.read_tasks([]) == {} and conn.meter.calls - before == 2


def test_a_refused_record_fails_alone(fresh: Crm) -> None:
    """A record the CRM refuses fails with the CRM's code while the rest of its batch lands; a
    validation error is final, a row lock worth retrying."""
    conn = fresh.connector()
    bad, locked, good = fresh.live_ids()[:3]
    endpoint = fresh.endpoint("flag.write")
    fresh.side.faults.add(
        Fault("record_error", endpoint=endpoint, code="validation", record_ids=[bad])
    )
    fresh.side.faults.add(
        Fault("record_error", endpoint=endpoint, code="row_lock", record_ids=[locked])
    )
    writes = [
        Write(f"k-{rid}", "flag.write", rid, {"field": "flags", "value": "x"})
        for rid in (bad, locked, good)
    ]
    results = conn.write("flag.write", writes)
    assert [(r.ok, r.retryable) for r in results] == [(False, False), (False, True), (True, False)]
    assert fresh.record_code("validation") in str(results[0].error)
    assert fresh.record_code("row_lock") in str(results[1].error)
    assert (fresh.flag(bad), fresh.flag(locked), fresh.flag(good)) == (None, None, "x")
    _cost(fresh, conn, fresh.login_calls + 1)


# ---- errors ------------------------------------------------------------------------------
def test_refused_credentials_raise_auth_failed_without_retry(reading: Crm) -> None:
    """Credentials the CRM refuses raise AuthFailed with the CRM's reason, after one call."""
    conn = reading.connector_with(bad_credentials=True)
    with pytest.raises(AuthFailed, match=re.escape(reading.refusal)):
        list(conn.list_ids())
    assert reading.side.calls.total() == 1


def test_a_client_error_raises_crm_api_error_without_retry(reading: Crm) -> None:
    """A 4xx answer (here: tasks keyed by a field the CRM lacks) raises CrmApiError, not retried."""
    conn = reading.connector_with(mapping=reading.mapping_with_missing_task_key())
    with pytest.raises(CrmApiError, match="find tasks") as raised:
        conn.find_tasks(["contract-key"])
    assert not isinstance(raised.value, CrmUnavailable)
    assert reading.side.calls.counts()[reading.endpoint("find_tasks")] == 1
    _cost(reading, conn, reading.login_calls + 1)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "rate_limit", "retry_after": 0.01},
        {"kind": "rate_limit"},
        {"kind": "unavailable"},
        {"kind": "server_error"},
    ],
    ids=["429-retry-after", "429", "503", "500"],
)
def test_a_short_storm_is_retried_through(reading: Crm, fault: dict[str, Any]) -> None:
    """Two 429/5xx answers in a row are retried, and the third call gives the answer."""
    added = reading.side.faults.add(Fault(endpoint=reading.endpoint("list"), times=2, **fault))
    conn = reading.connector()
    assert sorted(conn.list_ids()) == sorted(reading.live_ids())
    assert added.fired == 2
    assert reading.side.calls.counts()[reading.endpoint("list")] == 3
    _cost(reading, conn, reading.login_calls + 3)


@pytest.mark.parametrize("kind", ["rate_limit", "unavailable"])
def test_an_endless_storm_ends_in_crm_unavailable(reading: Crm, kind: str) -> None:
    """429s or 503s on every call are retried `max_retries` times, then CrmUnavailable."""
    reading.side.faults.add(Fault(kind, endpoint=reading.endpoint("list"), times=None, rate=1.0))
    conn = reading.connector(max_retries=2)
    with pytest.raises(CrmUnavailable, match="kept failing after 2 retries"):
        list(conn.list_ids())
    assert reading.side.calls.counts()[reading.endpoint("list")] == 3


def test_the_crms_daily_limit_answer_raises_quota_stop(reading: Crm) -> None:
    """The CRM's own daily-limit answer raises QuotaStop at once (no retries spend more)."""
    reading.side.faults.add(Fault("daily_limit", endpoint=reading.endpoint("list")))
    conn = reading.connector()
    with pytest.raises(QuotaStop, match="daily API limit reached"):
        list(conn.list_ids())
    assert reading.side.calls.counts()[reading.endpoint("list")] == 1


def test_the_quota_guard_refuses_before_calling(reading: Crm) -> None:
    """Once the configured share of the daily quota is used, the next call is not even sent."""
    conn = reading.connector(quota_share=0.5)
    conn.meter.read_quota(50, 100)
    with pytest.raises(QuotaStop, match="stop at 50%"):
        list(conn.list_ids())
    _cost(reading, conn, 0)


def test_an_expired_session_is_renewed_or_refused(reading: Crm) -> None:
    """An expired session is renewed once and the call repeated (Salesforce), or refused as
    AuthFailed when the token cannot be renewed (HubSpot private-app tokens)."""
    reading.side.faults.add(Fault("expired_session", endpoint=reading.endpoint("list")))
    conn = reading.connector()
    if reading.name == "salesforce":
        assert sorted(conn.list_ids()) == sorted(reading.live_ids())
        assert reading.side.calls.counts()["oauth_token"] == 2  # the login, and the renewal
        _cost(reading, conn, 2 + 2)
    else:
        with pytest.raises(AuthFailed, match="EXPIRED_AUTHENTICATION"):
            list(conn.list_ids())
        _cost(reading, conn, 1)


def test_changed_since_leaves_out_records_read_at_their_stamp_to_the_millisecond(
    fresh: Crm,
) -> None:
    """Stamps carry milliseconds while the CRM may compare to the second: a record the last
    pull read at its current stamp is not reported, and one changed later within the same
    second as the cursor is (issue 13, finding 1)."""
    conn = fresh.connector(overlap_seconds=0)
    clock = fresh.sb.clock
    base = clock.now().replace(microsecond=0) + timedelta(seconds=5)
    read_id, late_id = fresh.live_ids()[2], fresh.live_ids()[5]
    clock.freeze(base + timedelta(milliseconds=250))
    fresh.edit(read_id, flags="read")
    clock.advance(timedelta(seconds=3))
    cursor = _last_cursor(_pull(conn))
    assert cursor is not None
    assert conn.changed_since(cursor, ["flags"]) == {}
    if fresh.name == "salesforce":  # the cursor is the newest stamp read, with its ids
        assert parse_stamp(cursor.value) == base + timedelta(milliseconds=250)
        assert read_id in cursor.ids_at_value
        edge = parse_stamp(cursor.value)
    else:  # the cursor is the end of the window read
        edge = datetime.fromisoformat(json.loads(cursor.value)["since"])
    clock.freeze(edge + timedelta(milliseconds=300))  # committed late, in the same second
    fresh.edit(late_id, flags="late")
    clock.advance(timedelta(seconds=3))
    assert conn.changed_since(cursor, ["flags"]) == {late_id: {"flags": "late"}}


def test_hubspot_never_names_one_record_twice_in_a_batch(
    fresh: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writes to one deal in one write() go in two batches, the later one last, so the
    deal ends with the later value; Salesforce takes them in one call (issue 13, finding 2)."""
    conn = fresh.connector()
    a, b = fresh.live_ids()[:2]
    writes = [
        Write("k1", "flag.write", a, {"field": "flags", "value": "first"}),
        Write("k2", "flag.write", b, {"field": "flags", "value": "other"}),
        Write("k3", "flag.write", a, {"field": "flags", "value": "last"}),
    ]
    batches: list[list[str]] = []
    if fresh.name == "hubspot":
        api_class = type(conn.api.client.crm.objects.batch_api)  # type: ignore[attr-defined]
        update = api_class.update

        def spy(self: Any, object_type: str, body: dict[str, Any], **kw: Any) -> Any:
            batches.append([str(i["id"]) for i in body["inputs"]])
            return update(self, object_type, body, **kw)

        monkeypatch.setattr(api_class, "update", spy)
    results = conn.write("flag.write", writes)
    assert [(r.key, r.ok) for r in results] == [("k1", True), ("k2", True), ("k3", True)]
    assert (fresh.flag(a), fresh.flag(b)) == ("last", "other")
    if fresh.name == "hubspot":
        assert batches == [[a, b], [a]]
        assert all(len(ids) == len(set(ids)) for ids in batches)
