"""Property: whatever the CRM does while a sync runs, the next incremental sync converges."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsync.app.sync import sync
from crmsync.sandbox import Sandbox
from crmsync.store import Store
from tests.conftest import make_sandbox
from tests.crm import connector, live_records, stored_records

Op = tuple[str, int]
OPS = st.lists(
    st.tuples(
        st.sampled_from(["edit", "create", "delete", "hard_delete", "touch"]),
        st.integers(0, 10_000),
    ),
    min_size=1,
    max_size=10,
)
_names = itertools.count()


def _apply(sb: Sandbox, crm: str, ops: list[Op]) -> None:
    """Carry out the operations on the sandbox, each a second apart."""
    for kind, n in ops:
        sb.clock.advance(timedelta(seconds=1))
        if crm == "salesforce":
            org = sb.salesforce.org
            live = [r for r in org.tables["Opportunity"].values() if not r["IsDeleted"]]
            rec = live[n % len(live)]
            if kind == "edit":
                org.update("Opportunity", rec["Id"], {"NextStep": f"step {n}"})
            elif kind == "create":
                org.create(
                    "Opportunity",
                    {
                        "Name": f"New {n}",
                        "StageName": "Qualification",
                        "CloseDate": "2027-03-31",
                        "OwnerId": rec["OwnerId"],
                    },
                )
            elif kind in ("delete", "hard_delete"):
                org.delete("Opportunity", rec["Id"], hard=kind == "hard_delete")
            else:  # many records take one timestamp
                ids = [r["Id"] for r in live[n % 50 : n % 50 + 120]]
                sb.salesforce.touch("Opportunity", ids, sb.clock.now().isoformat())
        else:
            portal = sb.hubspot.portal
            live = [r for r in portal.objects["deals"].values() if not r.archived]
            rec = live[n % len(live)]
            if kind == "edit":
                portal.update("deals", rec.id, {"hs_next_step": f"step {n}"})
            elif kind == "create":
                portal.create(
                    "deals",
                    {"dealname": f"New {n}", "pipeline": "default", "dealstage": "qualifiedtobuy"},
                )
            elif kind in ("delete", "hard_delete"):  # HubSpot shows only archiving to a sync
                portal.archive("deals", rec.id)
            else:
                ids = [str(r.id) for r in live[n % 50 : n % 50 + 120]]
                sb.hubspot.touch("deals", ids, sb.clock.now().isoformat())


@pytest.mark.slow
@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS, at_page=st.integers(1, 2), after=OPS)
def test_store_converges_to_the_crm(
    store: Store, crm: str, ops: list[Op], at_page: int, after: list[Op]
) -> None:
    """Changes made during a sync (at any page) and after it are all in the store afterwards."""
    sb = make_sandbox(opportunities=650)
    try:
        name = f"c{next(_names)}"
        pages = {"n": 0}

        def meddle(_summary: Any) -> None:
            pages["n"] += 1
            if pages["n"] == at_page:
                _apply(sb, crm, ops)

        sync(
            store, connector(sb, crm, name=name, page_size=200, overlap_seconds=0), progress=meddle
        )
        _apply(sb, crm, after)
        sb.clock.advance(timedelta(seconds=2))
        sync(store, connector(sb, crm, name=name, page_size=200, overlap_seconds=0))
        assert stored_records(store, name, crm) == live_records(sb, crm)
    finally:
        sb.stop()
