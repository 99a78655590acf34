"""One flag write per (record, field) per cycle, carrying every workflow's flags (issue 13,
finding 2)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmsync.store import Store
from crmsync.store.outbox import audit_trail
from crmsync.store.schema import outbox
from tests.actions.world import World, config_for, write_workflow
from tests.conftest import make_sandbox

# Two live workflows that flag the same open deals, the second with a task as well.
HYGIENE = """\
name: pipeline-hygiene
mode: live
rules:
  - id: open
    kind: custom
    condition: "!is_closed"
    actions:
      flag: {field: flags, value: stale}
"""
GATES = """\
name: stage-gates
mode: live
rules:
  - id: open
    kind: custom
    condition: "!is_closed"
    actions:
      flag: {field: flags, value: gate}
      task: {subject: "{{ name }}: check the gate", due_in_business_days: 3}
"""
ENDPOINTS = {
    "sf": ("collections_create", "collections_update", "query"),
    "hs": ("tasks.batch.create", "deals.batch.update", "deals.search"),
}


@pytest.fixture
def two(store: Store, store_url: str, tmp_path: Path) -> Iterator[World]:
    """250 opportunities per CRM, synced, and two live workflows flagging the same deals."""
    sb = make_sandbox(250)
    try:
        folder = tmp_path / "workflows"
        write_workflow(folder, HYGIENE, "hygiene.yaml")
        write_workflow(folder, GATES, "gates.yaml")
        w = World(sb, store, config_for(sb, store_url, folder))
        w.writeback(max_tasks_per_owner_per_day=100_000)
        w.sync()
        yield w
    finally:
        sb.stop()


def _rows(w: World, crm: str, kind: str) -> list[dict[str, object]]:
    with w.store.reading("test") as conn:
        query = sa.select(outbox).where(outbox.c.connection == crm, outbox.c.kind == kind)
        return [r._asdict() for r in conn.execute(query)]


@pytest.mark.parametrize("crm", ["sf", "hs"])
def test_two_workflows_flagging_a_record_cost_one_write_each(two: World, crm: str) -> None:
    """Each flagged record gets one write carrying both workflows' flags, so the API cost is
    ceil(records/200) Salesforce and ceil(records/100) HubSpot flag calls, plus the task
    batches, one changed-since check and the Salesforce login; the write that was superseded
    says so in the audit."""
    side = two.sb.salesforce if crm == "sf" else two.sb.hubspot
    side.calls.reset()
    report = two.apply(connections=[crm])
    flags = _rows(two, crm, "flag.write")
    records = {str(r["native_id"]) for r in flags}
    tasks = len(_rows(two, crm, "task.create"))
    # a task for every flagged deal but those with no active owner (no route configured)
    owned = {
        o.native_id for o in two.store.iter_opportunities(crm) if o.owner_id and o.owner_active
    }
    assert len(records) > 100 and tasks == len(records & owned) < len(records)
    size = 200 if crm == "sf" else 100
    create, update, check = ENDPOINTS[crm]
    calls = two.calls(crm)
    assert calls[update] == math.ceil(len(records) / size)
    assert calls[create] == math.ceil(tasks / size)
    assert calls[check] == 1
    login = 1 if crm == "sf" else 0
    assert sum(calls.values()) == calls[update] + calls[create] + 1 + login
    assert report.total("api_calls") == sum(calls.values())
    confirmed = Counter(str(r["native_id"]) for r in flags if r["state"] == "confirmed")
    assert set(confirmed) == records and set(confirmed.values()) == {1}
    superseded = [r for r in flags if r["state"] != "confirmed"]
    assert {r["state"] for r in superseded} == {"skipped"}
    for rid in records:
        assert {"gate", "stale"} <= set((two.flags(crm)[rid] or "").split(";"))
    trail = audit_trail(two.store, opportunity=str(superseded[0]["native_id"]))
    (entry,) = [e for e in trail if e["key"] == superseded[0]["key"] and e["state"] == "skipped"]
    assert "superseded" in str(entry["detail"])
    second = two.cycle(connections=[crm])
    assert second.total("flagged") == 0  # nothing left to change
