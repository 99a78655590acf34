"""Property: whatever the CRM does while a sync runs, the next incremental sync converges.

The sandbox runs as strict as the real APIs (HubSpot's search lags writes by `SEARCH_DELAY`
seconds, SOQL compares datetimes to the second), records commit after a query began with an
earlier stamp (commit lag), and the connectors run with a real look-back window (`OVERLAP`). The
store is compared with a fresh full read on every mapped field.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from crmsync.app.sync import sync
from crmsync.connectors.base import Connector
from crmsync.sandbox import Sandbox
from crmsync.sandbox.hubspot.portal import SEARCH_DELAY
from crmsync.store import Store
from tests.conftest import make_sandbox
from tests.crm import connector

COMMIT_LAG = 3.0  # seconds a record's stamp may precede its commit
OVERLAP = 10.0  # the connectors' look-back window: covers commit lag and search lag
assert OVERLAP > COMMIT_LAG + SEARCH_DELAY

Op = tuple[str, int]
OPS = st.lists(
    st.tuples(
        st.sampled_from(["edit", "create", "delete", "hard_delete", "touch", "late_commit"]),
        st.integers(0, 10_000),
    ),
    min_size=1,
    max_size=10,
)
_names = itertools.count()
SF_STAGES = ["Prospecting", "Qualification", "Negotiation/Review", "Closed Won", "Closed Lost"]
HS_STAGES = ["appointmentscheduled", "qualifiedtobuy", "contractsent", "closedwon", "closedlost"]


def _sf_edit(n: int) -> dict[str, Any]:
    """A change to one of the mapped fields, picked by `n`."""
    return [
        {"NextStep": f"step {n}"},
        {"Amount": n * 10.5},
        {"StageName": SF_STAGES[n % len(SF_STAGES)]},
        {"CloseDate": (date(2027, 1, 1) + timedelta(days=n % 300)).isoformat()},
        {"Name": f"Renamed {n}", "NextStep": None},
    ][n % 5]


def _hs_edit(n: int) -> dict[str, Any]:
    return [
        {"hs_next_step": f"step {n}"},
        {"amount": str(n * 10.5)},
        {"dealstage": HS_STAGES[n % len(HS_STAGES)]},
        {"closedate": (date(2027, 1, 1) + timedelta(days=n % 300)).isoformat()},
        {"dealname": f"Renamed {n}", "hs_next_step": ""},
    ][n % 5]


def _apply(sb: Sandbox, crm: str, ops: list[Op], hard_deleted: set[str]) -> None:
    """Carry out the operations on the sandbox, each a second apart."""
    for kind, n in ops:
        sb.clock.advance(timedelta(seconds=1))
        now = sb.clock.now()
        if crm == "salesforce":
            org = sb.salesforce.org
            live = [r for r in org.tables["Opportunity"].values() if not r["IsDeleted"]]
            rec = live[n % len(live)]
            if kind in ("edit", "late_commit"):
                org.update("Opportunity", rec["Id"], _sf_edit(n // 7))
                if kind == "late_commit":  # stamped when its transaction began
                    lag = now - timedelta(seconds=COMMIT_LAG)
                    sb.salesforce.touch("Opportunity", [rec["Id"]], lag.isoformat())
            elif kind == "create":
                org.create(
                    "Opportunity",
                    {
                        "Name": f"New {n}",
                        "StageName": "Qualification",
                        "CloseDate": "2027-03-31",
                        "OwnerId": rec["OwnerId"],
                        "Amount": n,
                    },
                )
            elif kind in ("delete", "hard_delete"):
                org.delete("Opportunity", rec["Id"], hard=kind == "hard_delete")
                if kind == "hard_delete":  # getDeleted reports it once its minute is covered
                    hard_deleted.add(rec["Id"])
            else:  # many records take one timestamp
                ids = [r["Id"] for r in live[n % 50 : n % 50 + 120]]
                sb.salesforce.touch("Opportunity", ids, now.isoformat())
        else:
            portal = sb.hubspot.portal
            live = [r for r in portal.objects["deals"].values() if not r.archived]
            deal = live[n % len(live)]
            if kind in ("edit", "late_commit"):
                portal.update("deals", deal.id, _hs_edit(n // 7))
                if kind == "late_commit":
                    lag = now - timedelta(seconds=COMMIT_LAG)
                    sb.hubspot.touch("deals", [str(deal.id)], lag.isoformat())
            elif kind == "create":
                portal.create(
                    "deals",
                    {
                        "dealname": f"New {n}",
                        "pipeline": "default",
                        "dealstage": "qualifiedtobuy",
                        "amount": str(n),
                    },
                )
            elif kind == "delete":
                portal.archive("deals", deal.id)
            elif kind == "hard_delete":  # gone for good: only a reconcile can tell
                portal.archive("deals", deal.id, hard=True)
                hard_deleted.add(str(deal.id))
            else:
                ids = [str(r.id) for r in live[n % 50 : n % 50 + 120]]
                sb.hubspot.touch("deals", ids, now.isoformat())


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


def _fields(opp: Any) -> dict[str, Any]:
    """Every mapped field of an opportunity, in a form that survives the store's round trip."""
    return {  # shallow: asdict's deep copy of every value was a seventh of this test's time
        f.name: _comparable(getattr(opp, f.name))
        for f in dataclasses.fields(opp)
        if f.name != "connection"
    }


def _fresh(conn: Connector) -> dict[str, dict[str, Any]]:
    """What a full read of the CRM gives now, by native id."""
    return {
        opp.native_id: _fields(opp)
        for page in conn.pull(None, started_at=datetime.now())
        for opp in page.opportunities
    }


def _stored(store: Store, connection: str) -> dict[str, dict[str, Any]]:
    return {opp.native_id: _fields(opp) for opp in store.iter_opportunities(connection)}


@pytest.mark.slow
@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
@settings(
    max_examples=50,
    derandomize=True,  # the same examples in CI and on every machine
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a shrink would take many minutes
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS, at_page=st.integers(1, 2), after=OPS)
def test_store_converges_to_the_crm(
    store: Store, crm: str, ops: list[Op], at_page: int, after: list[Op]
) -> None:
    """Changes made during a sync (at any page) and after it are all in the store afterwards,
    on every mapped field; hard deletes once the CRM reports them (Salesforce: the next sync
    once getDeleted covers their minute; HubSpot, which never reports them: a reconcile)."""
    sb = make_sandbox(opportunities=250)  # two pages of 200: changes land mid-sync
    try:
        name = f"c{next(_names)}"
        pages = {"n": 0}
        hard_deleted: set[str] = set()

        def meddle(_summary: Any) -> None:
            pages["n"] += 1
            if pages["n"] == at_page:
                _apply(sb, crm, ops, hard_deleted)

        def conn() -> Connector:
            return connector(sb, crm, name=name, page_size=200, overlap_seconds=OVERLAP)

        sync(store, conn(), progress=meddle)
        _apply(sb, crm, after, hard_deleted)
        sb.clock.advance(timedelta(seconds=SEARCH_DELAY + 1))
        sync(store, conn())
        fresh = _fresh(conn())
        stored = _stored(store, name)
        assert {k: v for k, v in stored.items() if k not in hard_deleted} == fresh
        if hard_deleted:
            if crm == "salesforce":  # getDeleted cuts its end to the minute: a minute later
                sb.clock.advance(timedelta(seconds=61))
                sync(store, conn())
            else:  # HubSpot never reports a hard delete: a reconcile finds it
                sync(store, conn(), reconcile=True)
            assert _stored(store, name) == fresh
    finally:
        sb.stop()
