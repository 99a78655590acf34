"""What an incremental sync costs when little changed, on both CRMs, run after run through the
store: reference data cached between runs (the connector's cache cursor), read again once
`reference_refresh_seconds` passed; HubSpot's archived deals read only when the live count moved,
and then only the newly archived ones as deletions; Salesforce's OpportunityHistory queried when a
record moved. API calls are counted exactly by the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from crmsync.app.sync import SyncSummary, sync
from crmsync.connectors import cache
from crmsync.connectors.cache import CACHE_OBJECT
from crmsync.errors import InvalidInput
from crmsync.sandbox import Sandbox
from crmsync.store import Store
from tests.conftest import NOW, make_sandbox
from tests.connectors.contract import NEW_STAGE, Crm
from tests.crm import connector, hs_connector

CRMS = ["salesforce", "hubspot"]
QUIET = {  # a sync that finds nothing new
    "salesforce": {"oauth_token": 1, "composite": 1},
    "hubspot": {"deals.search": 2},
}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A small sandbox, ten minutes past every generated stamp (so a sync covers them all)."""
    sandbox = make_sandbox(opportunities=40)
    sandbox.clock.advance(timedelta(minutes=10))
    try:
        yield sandbox
    finally:
        sandbox.stop()


def _run(store: Store, sb: Sandbox, crm: str, **kwargs: Any) -> tuple[SyncSummary, dict[str, int]]:
    """One sync with a new connector (as each CLI run builds one), and the calls the CRM saw."""
    side = sb.salesforce if crm == "salesforce" else sb.hubspot
    side.calls.reset()
    summary = sync(store, connector(sb, crm), **kwargs)
    sb.clock.advance(timedelta(seconds=2))
    return summary, side.calls.counts()


def _settle(sb: Sandbox) -> None:
    """Past the search index's delay: HubSpot search sees a write a few seconds late."""
    sb.clock.advance(timedelta(seconds=30))


def _later(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    """This machine's clock, as the connector cache reads it, moved on by `delta`."""
    real = cache.wall_now
    monkeypatch.setattr(cache, "wall_now", lambda: real() + delta)


@pytest.mark.parametrize("crm", CRMS)
def test_reference_data_is_read_again_once_the_interval_passes(
    store: Store, sb: Sandbox, crm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run after run the cached describe/properties, pipelines and owners cost nothing; an hour
    on, one sync reads them again (and the checks that ride on the interval), then two calls."""
    _run(store, sb, crm)
    assert _run(store, sb, crm)[1] == QUIET[crm]
    _later(monkeypatch, timedelta(hours=1, seconds=1))
    summary, counts = _run(store, sb, crm)
    assert summary.inserted == summary.updated == summary.deleted == 0
    if crm == "salesforce":  # the describe, and the OpportunityHistory query the hour is due
        assert counts == {**QUIET[crm], "sobject_describe": 1, "query": 1}
    else:  # properties, pipelines, owners (live, archived), and the archived list the hour is due
        assert counts == {
            **QUIET[crm],
            "properties": 1,
            "pipelines": 1,
            "owners": 2,
            "deals.list": 1,
        }
    assert _run(store, sb, crm)[1] == QUIET[crm]


@pytest.mark.parametrize("crm", CRMS)
def test_a_full_sync_reads_reference_data_afresh(store: Store, sb: Sandbox, crm: str) -> None:
    """`sync --full` starts without the cache: the describe/properties are read again."""
    _run(store, sb, crm)
    _, counts = _run(store, sb, crm, full=True)
    assert counts.get("sobject_describe" if crm == "salesforce" else "properties") == 1


@pytest.mark.parametrize("crm", CRMS)
def test_a_mapped_field_the_cache_lacks_is_looked_up_again(
    store: Store, sb: Sandbox, crm: str
) -> None:
    """A mapping naming a field the cached describe/properties lack reads them again once (the
    field may be new) before it refuses the mapping."""
    _run(store, sb, crm)
    side = Crm(crm, sb)
    conn = side.connector_with(mapping=side.mapping_with_missing_field())
    conn.load_cache(store.get_cursor(conn.connection, CACHE_OBJECT))
    side.side.calls.reset()
    with pytest.raises(InvalidInput, match=side.missing_field):
        conn.check()
    expected = (
        {"oauth_token": 1, "sobject_describe": 1} if crm == "salesforce" else {"properties": 1}
    )
    assert side.side.calls.counts() == expected


def test_an_archived_deal_is_found_by_the_live_count(store: Store, sb: Sandbox) -> None:
    """HubSpot: one deal archived since the last sync lowers the live count, so the sync reads
    the archived list (one page) and deletes it. Each list gives as deletions only the deals
    archived since the newest one the last list saw, less the overlap: not the older ones."""
    _run(store, sb, "hubspot")
    first, second, third = sorted(sb.hubspot.portal.objects["deals"])[:3]
    sb.hubspot.portal.archive("deals", first)
    _settle(sb)
    summary, counts = _run(store, sb, "hubspot")
    gone = store.get(f"hs:{first}")
    assert summary.deleted == 1 and gone is not None and gone.deleted
    assert counts == {"deals.search": 2, "deals.list": 1}
    assert _run(store, sb, "hubspot")[1] == QUIET["hubspot"]  # the count agrees again
    for victim in (second, third):
        sb.clock.advance(timedelta(minutes=6))  # more than the overlap (300 s) apart
        sb.hubspot.portal.archive("deals", victim)
        _settle(sb)
        if victim == second:
            _run(store, sb, "hubspot")
    conn = hs_connector(sb)
    conn.load_cache(store.get_cursor("hs", CACHE_OBJECT))
    pages = list(conn.pull(store.get_cursor("hs", "deals"), started_at=NOW))
    # the newest archive the last list saw (second) is within the overlap; first is not
    assert {i for p in pages for i in p.deleted_ids} == {str(second), str(third)}


def test_a_created_deal_keeps_the_count_in_step(store: Store, sb: Sandbox) -> None:
    """HubSpot: a deal created since the last sync is in the window and in the count, so the
    archived list is not read."""
    _run(store, sb, "hubspot")
    template = next(iter(sb.hubspot.portal.objects["deals"].values())).properties
    sb.hubspot.portal.create(
        "deals",
        {k: template[k] for k in ("pipeline", "dealstage")} | {"dealname": "Brand new deal"},
    )
    _settle(sb)
    summary, counts = _run(store, sb, "hubspot")
    assert summary.inserted == 1
    assert counts == QUIET["hubspot"]


def test_a_salesforce_change_brings_its_history_in_one_more_call(store: Store, sb: Sandbox) -> None:
    """Salesforce: a stage change moves a record past the cursor, so the sync also queries
    OpportunityHistory (one call) and the new stage arrives as CRM history."""
    _run(store, sb, "salesforce")
    rid = Crm("salesforce", sb).live_ids()[5]
    sb.salesforce.org.update("Opportunity", rid, {"StageName": NEW_STAGE["salesforce"]})
    sb.clock.advance(timedelta(seconds=2))
    summary, counts = _run(store, sb, "salesforce")
    assert summary.updated == 1
    assert counts == {**QUIET["salesforce"], "query": 1}
    assert summary.history_rows > 0  # the OpportunityHistory row's amount and close date
    assert store.history(f"sf:{rid}", "stage")[-1].new_value == NEW_STAGE["salesforce"]


def test_a_cache_from_elsewhere_is_ignored() -> None:
    """A cache cursor that is not crmsync's JSON, or of another layout, is an empty cache."""
    from crmsync.model.records import Cursor

    assert cache.Kept.load(Cursor("not json", ()), 60).entries == {}
    assert cache.Kept.load(Cursor('{"version": 0, "entries": {"a": 1}}', ()), 60).entries == {}
    kept = cache.Kept(60)
    kept.put("describe", ["x"])
    again = cache.Kept.load(kept.cursor(), 60)
    assert again.get("describe") == ["x"] and again.fresh("describe")
    assert cache.Kept.load(kept.cursor(), 0).get("describe") is None  # no interval: never fresh
    assert isinstance(cache.wall_now(), datetime)


def test_an_archive_the_index_has_not_seen_is_found_by_the_next_sync(
    store: Store, sb: Sandbox
) -> None:
    """HubSpot: a deal archived just before a sync is still counted by the search index, so
    that sync does not see it gone; the next one, once the index caught up, does."""
    _run(store, sb, "hubspot")
    victim = sorted(sb.hubspot.portal.objects["deals"])[3]
    sb.hubspot.portal.archive("deals", victim)
    summary, counts = _run(store, sb, "hubspot")
    assert summary.deleted == 0 and counts == QUIET["hubspot"]
    _settle(sb)
    summary, counts = _run(store, sb, "hubspot")
    assert summary.deleted == 1 and counts == {"deals.search": 2, "deals.list": 1}
