"""The sync engine against the sandbox: both CRMs, both stores, exact API costs, faults."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from crmsync.app.prefetch import Prefetch
from crmsync.app.sync import sync
from crmsync.errors import AuthFailed, CrmApiError
from crmsync.sandbox import Fault, Sandbox
from crmsync.store import Store, write_group
from crmsync.store.history import StageSummarizer
from tests.conftest import make_sandbox
from tests.crm import connector, hs_connector, live_records, sf_connector, stored_records

CRMS = ["salesforce", "hubspot"]


@pytest.fixture(scope="module")
def big() -> Any:
    """A 2,500-opportunity sandbox shared by the cost tests (they only read)."""
    sb = make_sandbox(opportunities=2500)
    yield sb
    sb.stop()


def _side(sb: Sandbox, crm: str) -> Any:
    return sb.salesforce if crm == "salesforce" else sb.hubspot


def _history_rows(sb: Sandbox) -> int:
    return len(sb.salesforce.org.tables["OpportunityHistory"])


# ---- API cost --------------------------------------------------------------------------
@pytest.mark.parametrize("crm", CRMS)
def test_full_sync_costs_the_minimum(big: Sandbox, store: Store, crm: str) -> None:
    """Full sync: ceil(N/2000) queries (+ history pages) or ceil(N/100) list calls, + a constant."""
    side = _side(big, crm)
    side.calls.reset()
    conn = connector(big, crm)
    summary = sync(store, conn)
    n = 2500
    assert summary.status == "ok" and summary.inserted == n
    assert store.count(conn.connection) == n
    if crm == "salesforce":
        # login + describe, the opportunity pages, the OpportunityHistory pages
        expected = 2 + math.ceil(n / 2000) + math.ceil(_history_rows(big) / 2000)
    else:
        # properties + pipelines + owners (live, archived) + the live count + archived deals,
        # and the list pages
        expected = 6 + math.ceil(n / 100)
    assert summary.api_calls == expected
    assert side.calls.total() == expected  # the sandbox counted the same calls


@pytest.mark.parametrize("crm", CRMS)
def test_incremental_with_nothing_changed_costs_a_constant(
    big: Sandbox, store: Store, crm: str
) -> None:
    """A second sync with no changes costs two calls and changes nothing."""
    # the generated data has records stamped at the sandbox's frozen "now": ten minutes on, the
    # first sync's cursor covers them all (else the second sync reads them as new changes)
    big.clock.advance(timedelta(minutes=10))
    sync(store, connector(big, crm))
    side = _side(big, crm)
    side.calls.reset()
    summary = sync(store, connector(big, crm))
    assert summary.kind == "incremental"
    assert summary.inserted == summary.updated == summary.deleted == 0
    # salesforce: login, one /composite call (the first queryAll page and getDeleted); the
    # describe is cached and no record moved past the cursor, so no OpportunityHistory query
    # hubspot: one search page and the live count; properties, pipelines and owners are cached,
    # and the count says no deal was archived, so the archived list is not read
    assert summary.api_calls == 2
    assert side.calls.total() == summary.api_calls
    expected = {"oauth_token": 1, "composite": 1} if crm == "salesforce" else {"deals.search": 2}
    assert side.calls.counts() == expected


# ---- incremental correctness -------------------------------------------------------------
@pytest.mark.parametrize("crm", CRMS)
def test_edits_creates_and_deletes_arrive_incrementally(store: Store, crm: str) -> None:
    """After edits, new records and deletes in the CRM, one incremental sync levels the store."""
    sb = make_sandbox(opportunities=300)
    try:
        sync(store, connector(sb, crm))
        sb.clock.advance(timedelta(minutes=10))
        _mutate(sb, crm, seed=1)
        sb.clock.advance(timedelta(seconds=2))
        summary = sync(store, connector(sb, crm))
        assert summary.kind == "incremental"
        assert stored_records(store, connector(sb, crm).connection, crm) == live_records(sb, crm)
    finally:
        sb.stop()


@pytest.mark.parametrize("crm", CRMS)
def test_changes_during_a_sync_are_not_lost(store: Store, crm: str) -> None:
    """Records edited, created and deleted while pages are being read converge on the next sync."""
    sb = make_sandbox(opportunities=450)
    try:
        pages = {"n": 0}

        def meddle(_summary: Any) -> None:
            pages["n"] += 1
            if pages["n"] == 2:
                sb.clock.advance(timedelta(seconds=3))
                _mutate(sb, crm, seed=pages["n"])

        conn = connector(sb, crm, page_size=200)
        sync(store, conn, progress=meddle)
        sb.clock.advance(timedelta(seconds=61))  # getDeleted covers whole minutes only
        sync(store, connector(sb, crm, page_size=200))
        assert stored_records(store, conn.connection, crm) == live_records(sb, crm)
    finally:
        sb.stop()


@pytest.mark.parametrize("crm", CRMS)
def test_edit_to_a_read_record_mid_sync_is_caught_without_overlap(store: Store, crm: str) -> None:
    """A record already read is edited, then an unread one: the cursor must not jump past both."""
    sb = make_sandbox(opportunities=600)
    try:
        conn = connector(sb, crm, page_size=200, overlap_seconds=0)
        if crm == "salesforce":
            by_stamp = sorted(
                sb.salesforce.org.tables["Opportunity"].values(),
                key=lambda r: (r["SystemModstamp"], r["Id"]),
            )
            first, last = by_stamp[0]["Id"], by_stamp[-1]["Id"]
        else:
            ids = sorted(sb.hubspot.portal.objects["deals"])
            first, last = str(ids[0]), str(ids[-1])
        pages = {"n": 0}

        def meddle(_summary: Any) -> None:
            pages["n"] += 1
            if pages["n"] == 1:  # the first page is stored; edit one of its records, then one
                for rid in (first, last):  # not read yet
                    sb.clock.advance(timedelta(seconds=1))
                    if crm == "salesforce":
                        sb.salesforce.org.update("Opportunity", rid, {"NextStep": "edited"})
                    else:
                        sb.hubspot.portal.update("deals", int(rid), {"hs_next_step": "edited"})

        sync(store, conn, progress=meddle)
        sb.clock.advance(timedelta(seconds=1))
        sync(store, connector(sb, crm, page_size=200, overlap_seconds=0))
        for rid in (first, last):
            assert store.get(f"{conn.connection}:{rid}").next_step == "edited"  # type: ignore[union-attr]
    finally:
        sb.stop()


def test_shared_timestamp_across_pages_with_no_overlap(store: Store) -> None:
    """450 records sharing one SystemModstamp across 200-record pages: none lost, none repeated."""
    sb = make_sandbox(opportunities=450)
    try:
        ids = list(sb.salesforce.org.tables["Opportunity"])
        sb.salesforce.touch("Opportunity", ids, (sb.clock.now() + timedelta(minutes=1)).isoformat())
        sb.clock.advance(timedelta(minutes=2))
        first = sync(store, sf_connector(sb, page_size=200, overlap_seconds=0))
        assert first.inserted == 450
        again = sync(store, sf_connector(sb, page_size=200, overlap_seconds=0))
        # the query returns the 450 again (>= the cursor), and every one is known and skipped
        assert again.fetched == 450
        assert again.inserted == again.updated == again.unchanged == 0
    finally:
        sb.stop()


@pytest.mark.slow
def test_more_than_10000_deals_share_one_modification_time(store: Store) -> None:
    """An incremental HubSpot sync over 10,300 deals with one hs_lastmodifieddate is complete."""
    sb = make_sandbox(opportunities=10_300)
    try:
        sync(store, hs_connector(sb))
        ids = [str(i) for i in sb.hubspot.portal.objects["deals"]]
        sb.clock.advance(timedelta(minutes=10))
        sb.hubspot.touch("deals", ids, sb.clock.now().isoformat())
        for i in ids[:50]:
            sb.hubspot.portal.objects["deals"][int(i)].properties["dealname"] = f"Renamed {i}"
        sb.clock.advance(timedelta(seconds=5))
        sb.hubspot.calls.reset()
        summary = sync(store, hs_connector(sb))
        assert summary.fetched == 10_300 and summary.updated == 10_300  # all have a new stamp
        # the window pages, and the live count that says no deal was archived
        assert sb.hubspot.calls.counts()["deals.search"] == math.ceil(10_300 / 200) + 1
        renamed = store.get(f"hs:{ids[0]}")
        assert renamed is not None and renamed.name == f"Renamed {ids[0]}"
    finally:
        sb.stop()


# ---- history, set-aside, reconcile -------------------------------------------------------
def test_salesforce_stage_history_comes_from_opportunityhistory(store: Store) -> None:
    """Stage changes recorded by Salesforce land in the store's field history, origin crm."""
    sb = make_sandbox(opportunities=40)
    try:
        sync(store, sf_connector(sb))
        opp_id, rows = next(
            (k, v) for k, v in sb.salesforce.org.history_by_opportunity.items() if len(v) >= 3
        )
        stages = [r.new_value for r in store.history(f"sf:{opp_id}", "stage") if r.origin == "crm"]
        crm_stages = [sb.salesforce.org.tables["OpportunityHistory"][h]["StageName"] for h in rows]
        collapsed = [s for i, s in enumerate(crm_stages) if i == 0 or s != crm_stages[i - 1]]
        assert stages == collapsed
    finally:
        sb.stop()


@pytest.mark.parametrize("crm", CRMS)
def test_unusable_record_is_set_aside_then_recovered(store: Store, crm: str) -> None:
    """A record without a name is set aside with the reason, and stored once it is fixed."""
    sb = make_sandbox(opportunities=20)
    try:
        conn = connector(sb, crm)
        side = _side(sb, crm)
        rid = _first_id(sb, crm)
        field = "Name" if crm == "salesforce" else "dealname"
        sb.clock.advance(timedelta(minutes=10))
        side.admin_update("Opportunity" if crm == "salesforce" else "deals", rid, {field: "   "})
        summary = sync(store, conn)
        assert summary.set_aside == 1
        [(_, aside)] = store.set_aside_rows(conn.connection)
        assert aside.native_id == rid and aside.reason.startswith("name: is empty")
        sb.clock.advance(timedelta(minutes=1))
        side.admin_update("Opportunity" if crm == "salesforce" else "deals", rid, {field: "Fixed"})
        sb.clock.advance(timedelta(seconds=2))
        sync(store, connector(sb, crm))
        assert store.set_aside_rows(conn.connection) == []
        assert store.get(f"{conn.connection}:{rid}").name == "Fixed"  # type: ignore[union-attr]
    finally:
        sb.stop()


def test_reconcile_finds_hubspot_hard_deletes(store: Store) -> None:
    """A deal removed for good never shows as archived; --reconcile notices it is gone."""
    sb = make_sandbox(opportunities=30)
    try:
        sync(store, hs_connector(sb))
        gone = _first_id(sb, "hubspot")
        sb.hubspot.portal.archive("deals", int(gone), hard=True)
        sync(store, hs_connector(sb))
        assert store.get(f"hs:{gone}").deleted is False  # type: ignore[union-attr]
        summary = sync(store, hs_connector(sb), reconcile=True)
        assert summary.kind == "reconcile" and summary.deleted == 1
        assert store.get(f"hs:{gone}").deleted is True  # type: ignore[union-attr]
    finally:
        sb.stop()


def test_reconcile_rereads_fields_changed_without_a_stamp(store: Store) -> None:
    """A field that changes without SystemModstamp (formula and roll-up fields do) is seen by a
    reconcile only. (LastActivityDate moved by an activity does move SystemModstamp, Salesforce
    help 000387261; here it changes behind the org's back, as a roll-up would.)"""
    sb = make_sandbox(opportunities=30)
    try:
        sync(store, sf_connector(sb))
        opp = next(r for r in sb.salesforce.org.tables["Opportunity"].values() if not r["IsClosed"])
        sb.clock.advance(timedelta(days=2))
        day = sb.clock.now().date().isoformat()
        with sb.salesforce.org.lock:
            opp["LastActivityDate"] = day  # no stamp moves
        sync(store, sf_connector(sb))
        key = f"sf:{opp['Id']}"
        assert str(store.get(key).last_activity_at)[:10] != day  # type: ignore[union-attr]
        sync(store, sf_connector(sb), reconcile=True)
        assert str(store.get(key).last_activity_at)[:10] == day  # type: ignore[union-attr]
    finally:
        sb.stop()


# ---- faults ------------------------------------------------------------------------------
FAULTS = [
    {"kind": "rate_limit", "retry_after": 0.01, "times": 2},
    {"kind": "rate_limit", "times": 2},
    {"kind": "unavailable", "times": 3},
    {"kind": "server_error", "times": 1},
    {"kind": "drop", "times": 2},
    {"kind": "slow", "delay": 0.05, "times": 2},
    {"kind": "expired_session", "times": 1},
]


# HubSpot private-app tokens do not expire and cannot be renewed: that case has its own test.
FAULT_CASES = [
    (crm, f)
    for crm in CRMS
    for f in FAULTS
    if not (crm == "hubspot" and f["kind"] == "expired_session")
]


@pytest.mark.parametrize(
    ("crm", "fault"), FAULT_CASES, ids=[f"{c}-{f['kind']}-{f.get('times')}" for c, f in FAULT_CASES]
)
def test_faults_end_in_a_complete_sync(store: Store, crm: str, fault: dict[str, Any]) -> None:
    """Each retriable fault is retried until the sync completes and the store matches the CRM."""
    sb = make_sandbox(opportunities=250)
    try:
        endpoint = "query_more" if crm == "salesforce" else "deals.list"
        _side(sb, crm).faults.add(Fault(endpoint=endpoint, **fault))
        summary = sync(store, connector(sb, crm, page_size=200))
        assert summary.status == "ok"
        assert stored_records(store, connector(sb, crm).connection, crm) == live_records(sb, crm)
        fired = _side(sb, crm).faults.active()[0].fired
        # a slow answer is not a failure: it fires on as many calls as there are
        assert fired == fault["times"] or (fault["kind"] == "slow" and fired >= 1)
    finally:
        sb.stop()


def test_login_is_retried_and_bad_credentials_are_not(store: Store) -> None:
    """A 503 from the token endpoint is retried; a refused password fails at once, with why."""
    sb = make_sandbox(opportunities=20)
    try:
        sb.salesforce.faults.add(Fault("unavailable", endpoint="oauth_token", times=2))
        assert sync(store, sf_connector(sb)).status == "ok"
        assert sb.salesforce.calls.counts()["oauth_token"] == 3
        bad = sf_connector(sb, method="password")
        object.__setattr__(bad.auth, "password", "wrong")
        with pytest.raises(
            AuthFailed, match=r"salesforce login refused \(password\): authentication failure"
        ):
            sync(store, bad)
    finally:
        sb.stop()


def test_hubspot_expired_token_fails_cleanly(store: Store) -> None:
    """A HubSpot 401 is not retried: the sync fails with HubSpot's category and message."""
    sb = make_sandbox(opportunities=20)
    try:
        sb.hubspot.faults.add(Fault("expired_session", endpoint="deals.list"))
        with pytest.raises(Exception, match="EXPIRED_AUTHENTICATION"):
            sync(store, hs_connector(sb))
        assert store.runs("hs")[0]["status"] == "failed"
        assert store.get_cursor("hs", "deals") is None
    finally:
        sb.stop()


def test_salesforce_static_token_cannot_be_renewed(store: Store) -> None:
    """With a bare access token an expired session ends the sync with a clear message."""
    sb = make_sandbox(opportunities=20)
    try:
        sb.salesforce.faults.add(Fault("expired_session", endpoint="query"))
        with pytest.raises(CrmApiError, match="session expired and cannot be renewed"):
            sync(store, sf_connector(sb, method="access_token"))
    finally:
        sb.stop()


def test_persistent_failure_gives_up_with_the_crm_message(store: Store) -> None:
    """503 on every call: retries run out and the error says what kept failing."""
    sb = make_sandbox(opportunities=20)
    try:
        sb.salesforce.faults.add(Fault("unavailable", endpoint="query", times=None, rate=1.0))
        with pytest.raises(CrmApiError, match="query kept failing after 2 retries"):
            sync(store, sf_connector(sb, max_retries=2))
        assert sb.salesforce.calls.counts()["query"] == 3
    finally:
        sb.stop()


@pytest.mark.parametrize("crm", CRMS)
def test_daily_limit_stops_cleanly_and_resumes(store: Store, crm: str) -> None:
    """Daily limit mid-sync: stopped, cursor only covers stored pages, next run completes."""
    sb = make_sandbox(opportunities=700)
    try:
        side = _side(sb, crm)
        conn = connector(sb, crm, page_size=200, quota_share=1.0)
        allowance = 3 if crm == "salesforce" else 8  # calls before the CRM says no, mid-pages
        side.calls.set_daily_used(side.calls.quota.daily_limit - allowance)
        first = sync(store, conn)
        assert first.status == "stopped" and "resumes next run" in str(first.error)
        stored_before = store.count(conn.connection)
        assert 0 < stored_before < 700
        side.calls.set_daily_used(0)
        second = sync(store, connector(sb, crm, page_size=200))
        assert second.status == "ok"
        assert stored_records(store, conn.connection, crm) == live_records(sb, crm)
    finally:
        sb.stop()


@pytest.mark.parametrize("crm", CRMS)
def test_crm_daily_limit_answer_stops_cleanly(store: Store, crm: str) -> None:
    """The CRM's own daily-limit answer (403 / 429 DAILY) ends the sync as stopped, not failed."""
    sb = make_sandbox(opportunities=50)
    try:
        endpoint = "queryAll" if crm == "salesforce" else "deals.list"
        _side(sb, crm).faults.add(Fault("daily_limit", endpoint=endpoint))
        summary = sync(store, connector(sb, crm))
        assert summary.status == "stopped" and "daily API limit reached" in str(summary.error)
        assert (
            store.get_cursor(connector(sb, crm).connection, connector(sb, crm).object_name) is None
        )
    finally:
        sb.stop()


@pytest.mark.parametrize("crm", CRMS)
def test_quota_share_guard_stops_before_spending(store: Store, crm: str) -> None:
    """With quota_share 0.5 the connector stops once half the daily allowance is used."""
    sb = make_sandbox(opportunities=700)
    try:
        side = _side(sb, crm)
        limit = side.calls.quota.daily_limit
        side.calls.set_daily_used(limit // 2 - 4)
        summary = sync(store, connector(sb, crm, page_size=200, quota_share=0.5))
        assert summary.status == "stopped" and "stop at 50%" in str(summary.error)
        assert side.calls.daily_used <= limit // 2 + 1
        assert store.runs(connector(sb, crm).connection)[0]["status"] == "stopped"
    finally:
        sb.stop()


# ---- helpers -----------------------------------------------------------------------------
def _first_id(sb: Sandbox, crm: str) -> str:
    if crm == "salesforce":
        return next(iter(sb.salesforce.org.tables["Opportunity"]))
    return str(next(iter(sb.hubspot.portal.objects["deals"])))


def _mutate(sb: Sandbox, crm: str, seed: int) -> None:
    """Edit some records, create a few, delete a few (Salesforce: one for good)."""
    if crm == "salesforce":
        org = sb.salesforce.org
        live = [r for r in org.tables["Opportunity"].values() if not r["IsDeleted"]]
        for rec in live[seed * 7 : seed * 7 + 5]:
            org.update(
                "Opportunity",
                rec["Id"],
                {"NextStep": f"edit {seed}", "StageName": "Negotiation/Review"},
            )
        owner = live[0]["OwnerId"]
        for i in range(3):
            org.create(
                "Opportunity",
                {
                    "Name": f"New {seed}-{i}",
                    "StageName": "Prospecting",
                    "CloseDate": "2027-01-31",
                    "OwnerId": owner,
                },
            )
        org.delete("Opportunity", live[-1]["Id"])
        org.delete("Opportunity", live[-2]["Id"], hard=True)
    else:
        portal = sb.hubspot.portal
        live = [r for r in portal.objects["deals"].values() if not r.archived]
        for rec in live[seed * 7 : seed * 7 + 5]:
            portal.update(
                "deals", rec.id, {"hs_next_step": f"edit {seed}", "dealstage": "contractsent"}
            )
        for i in range(3):
            portal.create(
                "deals",
                {
                    "dealname": f"New {seed}-{i}",
                    "pipeline": "default",
                    "dealstage": "appointmentscheduled",
                },
            )
        portal.archive("deals", live[-1].id)


def test_cursor_is_json_for_hubspot_and_a_stamp_for_salesforce(store: Store) -> None:
    """Each connector's cursor is what it says: a SystemModstamp, or a HubSpot window state."""
    sb = make_sandbox(opportunities=10)
    try:
        sync(store, sf_connector(sb))
        sync(store, hs_connector(sb))
        assert store.get_cursor("sf", "Opportunity").value.endswith("+0000")  # type: ignore[union-attr]
        state = json.loads(store.get_cursor("hs", "deals").value)  # type: ignore[union-attr]
        assert state["mode"] == "incremental"
    finally:
        sb.stop()


# ---- history summaries ---------------------------------------------------------------------
@pytest.mark.parametrize("crm", CRMS)
def test_a_sync_leaves_every_summary_current(store: Store, crm: str) -> None:
    """After a full sync and an incremental one with edits, every live deal's kept summary is
    what its stored record and history say; a changed stage mapping is caught up by the next
    sync (`summaries.refreshed`), however little it pulls."""
    sb = make_sandbox(opportunities=300)
    try:
        conn = connector(sb, crm)
        sync(store, conn)
        sb.clock.advance(timedelta(minutes=10))
        _mutate(sb, crm, seed=3)
        sb.clock.advance(timedelta(seconds=2))
        conn = connector(sb, crm)
        sync(store, conn)
        _check_summaries(store, conn.connection, StageSummarizer(conn.mapping.stages))

        changed = conn.mapping.model_copy(update={"stages": {**conn.mapping.stages, "x": "y"}})
        moved = StageSummarizer(changed.stages)
        assert store.stale_summaries(conn.connection, moved.version) == store.count(conn.connection)
        later = connector(sb, crm)
        later.mapping = changed
        with capture_logs() as logs:
            summary = sync(store, later)
        assert summary.inserted == summary.updated == 0
        refreshed = [e for e in logs if e["event"] == "summaries.refreshed"]
        assert [e["count"] for e in refreshed] == [
            store.count(conn.connection, include_deleted=True)
        ]
        _check_summaries(store, conn.connection, moved)
    finally:
        sb.stop()


def _check_summaries(store: Store, connection: str, summarizer: StageSummarizer) -> None:
    assert store.stale_summaries(connection, summarizer.version) == 0
    kept = list(store.iter_summarized(connection, summarizer.version))
    assert len(kept) == store.count(connection) > 250
    for opp, summary in kept:
        assert summary == summarizer(opp, store.history(opp.key)), opp.key


# ---- grouped commits -----------------------------------------------------------------------
def _count_commits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each commit of a group that held pages, counted; no commit falls due by time."""
    monkeypatch.setattr(write_group, "COMMIT_SECONDS", 1e9)
    commits: list[bool] = []
    original = write_group.WriteGroup.commit

    def counted(self: write_group.WriteGroup) -> None:
        if self.pending:
            commits.append(True)
        original(self)

    monkeypatch.setattr(write_group.WriteGroup, "commit", counted)
    return commits


@pytest.mark.parametrize("crm", CRMS)
def test_a_phase_commits_once_not_once_a_page(
    store: Store, crm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the next page always there already (the store is the slower side), the pages of a
    phase share one transaction: one commit for the records' pages, one for Salesforce's
    history pages (HubSpot has none); what is stored is what the CRM holds, every summary
    current."""
    commits = _count_commits(monkeypatch)
    monkeypatch.setattr(Prefetch, "ready", lambda _self: True)
    sb = make_sandbox(opportunities=700)
    try:
        conn = connector(sb, crm, page_size=200)
        summary = sync(store, conn)
        assert summary.status == "ok" and summary.inserted == 700
        assert len(commits) == (2 if crm == "salesforce" else 1)
        assert stored_records(store, conn.connection, crm) == live_records(sb, crm)
        _check_summaries(store, conn.connection, StageSummarizer(conn.mapping.stages))
    finally:
        sb.stop()


@pytest.mark.parametrize("crm", CRMS)
def test_pages_are_committed_while_the_next_one_is_awaited(
    store: Store, crm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the next page is not there yet (the CRM is the slower side), the pages written are
    committed before waiting for it: one commit a page, no write lock held while the CRM
    answers."""
    commits = _count_commits(monkeypatch)
    monkeypatch.setattr(Prefetch, "ready", lambda _self: False)
    pages: list[int] = []
    sb = make_sandbox(opportunities=700)
    try:
        conn = connector(sb, crm, page_size=200)
        summary = sync(store, conn, progress=lambda s: pages.append(s.fetched))
        assert summary.status == "ok" and summary.inserted == 700
        assert len(commits) == len(pages) > 4
        assert stored_records(store, conn.connection, crm) == live_records(sb, crm)
    finally:
        sb.stop()
