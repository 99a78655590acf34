"""crmsync_actions names exactly the outbox's states (issue 13, finding 7)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client import generate_latest

from crmsync.service.metrics import Metrics
from crmsync.store import Store
from crmsync.store.outbox import STATES
from crmsync.store.schema import outbox
from tests.service.support import metric


def test_actions_are_exported_under_the_outboxs_own_states(store: Store) -> None:
    """Every state an outbox row can be in is a label (rows in `sent` and `failed` counted),
    and no label names a state that does not exist."""
    now = datetime.now(UTC)
    states = ["sent", "sent", "failed", "confirmed"]
    rows = [
        dict(
            key=f"k{i}",
            seq=i,
            connection="sf",
            workflow="wf",
            rule="r",
            opp_key="sf:1",
            native_id="1",
            kind="flag.write",
            payload={},
            state=state,
            attempts=1,
            created_at=now,
            updated_at=now,
        )
        for i, state in enumerate(states)
    ]
    with store.writing("test") as conn:
        conn.execute(sa.insert(outbox), rows)
    text = generate_latest(Metrics(lambda: store).registry).decode()
    labels = set(re.findall(r'^crmsync_actions\{state="([^"]+)"\}', text, re.MULTILINE))
    assert labels == set(STATES)
    assert metric(text, "crmsync_actions", state="sent") == 2
    assert metric(text, "crmsync_actions", state="failed") == 1
    assert metric(text, "crmsync_actions", state="planned") == 0
