"""HubSpot calls share a connection: hubspot-api-client makes a new ApiClient, with its own
connection pool, at every access of an API object (`client.crm.deals.basic_api`), so a pull that
asked for it at each call opened a TLS connection a page."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3

from crmsync.app.sync import sync
from crmsync.connectors.base import Write
from crmsync.store import Store
from tests.conftest import make_sandbox
from tests.crm import hs_connector


def _count_connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hosts of the connections urllib3 opens from now on, one entry each."""
    opened: list[str] = []
    for pool in (urllib3.HTTPConnectionPool, urllib3.HTTPSConnectionPool):
        original = pool._new_conn

        def counted(self: Any, _original: Any = original) -> Any:
            opened.append(self.host)
            return _original(self)

        monkeypatch.setattr(pool, "_new_conn", counted)
    return opened


def test_a_full_pull_opens_a_connection_per_api_not_per_page(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _count_connections(monkeypatch)
    sb = make_sandbox(opportunities=1000)
    try:
        summary = sync(store, hs_connector(sb))
    finally:
        sb.stop()
    assert summary.inserted == 1000
    assert summary.api_calls >= 15  # ten pages of deals, the reference data, the archived list
    # one each for properties, pipelines, owners (live and archived), the count and the pages
    assert len(opened) <= 6, opened


def test_owner_and_stage_values_come_from_the_reference_data(store: Store) -> None:
    """Each deal's @owner and @stage values are its own owner's and stage's (read once a page,
    made once per owner and per stage)."""
    sb = make_sandbox(opportunities=300)
    try:
        conn = hs_connector(sb)
        assert sync(store, conn).inserted == 300
        owners, stages = conn.owners(), conn.stages()
    finally:
        sb.stop()
    labels = {(s.label, s.pipeline_label) for s in stages.values()}
    seen_owners = set()
    for native_id in store.native_ids("hs"):
        deal = store.get(f"hs:{native_id}")
        assert deal is not None
        assert (deal.stage, deal.pipeline) in labels
        if deal.owner_id is not None:
            owner = owners[deal.owner_id]
            assert (deal.owner_name, deal.owner_email, deal.owner_active) == (
                owner.name,
                owner.email,
                owner.active,
            )
            seen_owners.add(deal.owner_id)
    assert len(seen_owners) > 1


def test_write_back_calls_share_one_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags, tasks and task reads go through one kept batch API: an apply of ninety batch calls
    opened ninety TLS connections when each call asked the client for `batch_api` afresh."""
    sb = make_sandbox(opportunities=30)
    try:
        conn = hs_connector(sb)
        ids = conn.list_ids()
        deals = [next(ids) for _ in range(6)]
        opened = _count_connections(monkeypatch)
        before = conn.meter.calls
        for i, rid in enumerate(deals):
            flag = Write(f"f{i}", "flag.write", rid, {"field": "flags", "value": "stale"})
            assert [r.ok for r in conn.write("flag.write", [flag])] == [True]
        values = {"subject": "Follow up", "body": "b", "due_date": "2026-12-01"}
        values |= {"due_at": "2026-12-01T09:00:00-05:00", "priority": "high", "owner_id": None}
        created = [
            conn.write("task.create", [Write(f"t{i}", "task.create", rid, values)])[0].crm_id
            for i, rid in enumerate(deals)
        ]
        assert all(created)
        assert len(conn.read_tasks([str(c) for c in created])) == len(deals)
    finally:
        sb.stop()
    assert conn.meter.calls - before == 13  # six flag calls, six task calls, one read
    assert len(opened) == 1, opened
