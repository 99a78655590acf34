"""Hostile records in one page (issue 14): a NUL byte, NaN, Infinity, a 1 MB string, a future
stamp and an unpaired surrogate beside good records. On both CRMs and both stores every good
record is stored, each hostile one is set aside by the connector with its reason, the other
connection still syncs, and a record the CRM fixes is stored by the next sync. A Salesforce
history value crmsync cannot keep (Amount Infinity) is skipped with a reason, sync after sync.

The sandboxes refuse such values through their APIs, as the real ones do; the tests write them
straight into the org's tables and the portal's objects, as a CRM could still hand them back. JSON
has no NaN or Infinity, but Python's json (and so simple-salesforce) reads the `NaN`, `Infinity`
and `1e309` some servers send: Salesforce's query answers are let through with them here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from crmsync.app.sync import try_sync
from crmsync.cli import main
from crmsync.sandbox import Sandbox
from crmsync.sandbox.clock import sf_datetime
from crmsync.sandbox.salesforce import query as sf_query
from crmsync.store import Store
from tests.actions.world import config_dict
from tests.conftest import make_sandbox
from tests.crm import connector

CRMS = ["salesforce", "hubspot"]
MEGABYTE = "x" * 1_000_000

# record -> (field, hostile value, the start of the reason it is set aside with)
HOSTILE: dict[str, list[tuple[str, Any, str]]] = {
    "salesforce": [
        ("Name", "Acme\x00 Corp", "name: contains a NUL character (at 4)"),
        ("Amount", float("nan"), "amount: is not a finite number (got nan)"),
        ("Amount", float("inf"), "amount: is not a finite number (got inf)"),
        ("NextStep", MEGABYTE, "next_step: is 1,000,000 characters long"),
        ("SystemModstamp", "future", "modified_at: is more than 1 day ahead of the CRM's clock"),
        ("Name", "Acme \ud800", "name: contains an unpaired surrogate (at 5)"),
    ],
    "hubspot": [
        ("dealname", "Big\x00Deal", "name: contains a NUL character (at 3)"),
        ("amount", "NaN", "amount: is not a finite number (got 'NaN')"),
        ("amount", "Infinity", "amount: is not a finite number (got 'Infinity')"),
        ("hs_next_step", MEGABYTE, "next_step: is 1,000,000 characters long"),
        ("hs_lastmodifieddate", "future", "modified_at: is more than 1 day ahead of the CRM's"),
        ("dealname", "call \udfff back", "name: contains an unpaired surrogate (at 5)"),
    ],
}
FIXED = {"Name": "Fixed", "dealname": "Fixed", "Amount": 5000, "amount": "5000"}
FIXED |= {"NextStep": "Call", "hs_next_step": "Call"}


@pytest.fixture
def lenient_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """Salesforce query answers may carry NaN and Infinity (the sandbox refuses them)."""
    monkeypatch.setattr(
        sf_query, "json_bytes", lambda body: json.dumps(body, separators=(",", ":")).encode()
    )


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    sandbox = make_sandbox(opportunities=30)
    try:
        yield sandbox
    finally:
        sandbox.stop()


def _ids(sb: Sandbox, crm: str) -> list[str]:
    if crm == "salesforce":
        return [i for i, r in sb.salesforce.org.tables["Opportunity"].items() if not r["IsDeleted"]]
    return [str(i) for i, r in sb.hubspot.portal.objects["deals"].items() if not r.archived]


def _poison(sb: Sandbox, crm: str, ids: list[str]) -> None:
    """Write the hostile values behind the API's back, one record each."""
    future = sb.clock.now() + timedelta(days=30)
    for rid, (field, value, _) in zip(ids, HOSTILE[crm], strict=False):
        if value == "future":
            side = sb.salesforce if crm == "salesforce" else sb.hubspot
            side.touch("Opportunity" if crm == "salesforce" else "deals", [rid], future.isoformat())
        elif crm == "salesforce":
            with sb.salesforce.org.lock:
                sb.salesforce.org.tables["Opportunity"][rid][field] = value
        else:
            with sb.hubspot.portal.lock:
                sb.hubspot.portal.objects["deals"][int(rid)].properties[field] = value


def _fix(sb: Sandbox, crm: str, ids: list[str]) -> None:
    """The CRM's users fix each record (a fresh stamp comes with the edit)."""
    for rid, (field, _, _) in zip(ids, HOSTILE[crm], strict=False):
        if crm == "salesforce":
            fields = {"Name": "Fixed"} if field == "SystemModstamp" else {field: FIXED[field]}
            sb.salesforce.admin_update("Opportunity", rid, fields)
        else:
            fields = {"dealname": "Fixed"} if field.startswith("hs_last") else {field: FIXED[field]}
            sb.hubspot.admin_update("deals", rid, fields)


@pytest.mark.parametrize("crm", CRMS)
@pytest.mark.usefixtures("lenient_json")
def test_hostile_records_are_set_aside_and_the_rest_stored(
    sb: Sandbox, store: Store, store_url: str, tmp_path: Path, crm: str
) -> None:
    """One page with every hostile record beside good ones: the good ones are stored, each
    hostile one set aside with its reason (logged, and listed by `crmsync status` on one
    printable line each), the other connection syncs after it, and once the CRM fixes them the
    next sync stores them all."""
    ids = _ids(sb, crm)
    hostile = ids[: len(HOSTILE[crm])]
    _poison(sb, crm, hostile)
    conn = connector(sb, crm)
    other_crm = "hubspot" if crm == "salesforce" else "salesforce"
    other = connector(sb, other_crm)
    with capture_logs() as logs:
        first = try_sync(store, conn)
    assert first.status == "ok", first.error
    assert first.set_aside == len(hostile) and first.inserted == len(ids) - len(hostile)
    stored = {o.native_id for o in store.iter_opportunities(conn.connection)}
    assert stored == set(ids) - set(hostile)  # every good record, in the same page
    reasons = {a.native_id: a.reason for _, a in store.set_aside_rows(conn.connection)}
    for rid, (_, _, reason) in zip(hostile, HOSTILE[crm], strict=True):
        assert reasons[rid].startswith(reason), reasons[rid]
        assert len(reasons[rid]) < 300  # a 1 MB value is not echoed
    logged = {e["record"]: e["reason"] for e in logs if e["event"] == "sync.record_set_aside"}
    assert logged == reasons
    config = tmp_path / "crmsync.yaml"
    config.write_text(json.dumps(config_dict(sb, store_url, tmp_path)), encoding="utf-8")
    status = CliRunner().invoke(main, ["status", "-c", str(config)])
    assert status.exit_code == 0, status.output
    listed = [line for line in status.output.splitlines() if line.startswith("  set aside ")]
    assert len(listed) == len(hostile) and all(line.isprintable() for line in listed)
    assert f"  set aside {hostile[0]}: {reasons[hostile[0]]}" in listed
    assert try_sync(store, other).status == "ok"
    assert store.count(other.connection) == len(_ids(sb, other_crm))

    sb.clock.advance(timedelta(minutes=2))
    _fix(sb, crm, hostile)
    sb.clock.advance(timedelta(seconds=5))  # past HubSpot's search lag
    second = try_sync(store, connector(sb, crm))
    assert second.status == "ok" and second.kind == "incremental", second.error
    assert store.set_aside_rows(conn.connection) == []
    assert {o.native_id for o in store.iter_opportunities(conn.connection)} == set(ids)


@pytest.mark.usefixtures("lenient_json")
def test_salesforce_history_value_infinity_is_skipped_for_good(sb: Sandbox, store: Store) -> None:
    """An OpportunityHistory Amount of Infinity (1e309) is skipped with a logged reason while the
    rest of the history is kept; fixing the opportunity's amount leaves the old row in history
    (and Infinity as the next row's PrevAmount), and every later sync still succeeds."""
    org = sb.salesforce.org
    opp = _ids(sb, "salesforce")[0]
    with org.lock:
        org.tables["Opportunity"][opp]["Amount"] = float("inf")
        row = dict(org.tables["OpportunityHistory"][org.history_by_opportunity[opp][-1]])
        row |= {"Id": "008ffffffffffffAAA", "Amount": float("inf"), "PrevAmount": 100.0}
        row["CreatedDate"] = row["SystemModstamp"] = sf_datetime(sb.clock.now())
        org.tables["OpportunityHistory"][row["Id"]] = row
    sb.clock.advance(timedelta(minutes=2))
    with capture_logs() as logs:
        first = try_sync(store, connector(sb, "salesforce"))
    assert first.status == "ok", first.error
    skipped = [e for e in logs if e["event"] == "salesforce.history_value_skipped"]
    assert [(e["history_id"], e["reason"]) for e in skipped] == [
        (row["Id"], "OpportunityHistory.Amount: is not a finite number (got inf)")
    ]
    assert first.history_rows > 0  # the other rows, and this row's stage and close date

    sb.salesforce.admin_update("Opportunity", opp, {"Amount": 5000})
    sb.clock.advance(timedelta(minutes=2))
    with capture_logs() as logs:
        second = try_sync(store, connector(sb, "salesforce"))
    assert second.status == "ok", second.error
    assert any(
        e["event"] == "salesforce.history_value_skipped"
        and e["reason"] == "OpportunityHistory.PrevAmount: is not a finite number (got inf)"
        for e in logs
    )
    amounts = [(h.old_value, h.new_value) for h in store.history(f"sf:{opp}", "amount")]
    assert amounts[-1][1] == "5000.0" and "inf" not in str(amounts).lower()
    third = try_sync(store, connector(sb, "salesforce"), full=True)
    assert third.status == "ok" and store.get(f"sf:{opp}").amount == 5000  # type: ignore[union-attr]
