"""The outbox counted by state: for summaries, the metrics and tests."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmsync.store.schema import outbox

if TYPE_CHECKING:
    from crmsync.store.store import Store

__all__ = ["outbox_counts", "outbox_counts_by_workflow"]


def outbox_counts(store: Store, connection: str | None = None) -> Counter[str]:
    """Outbox rows by state (for summaries and metrics)."""
    query = sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
    if connection:
        query = query.where(outbox.c.connection == connection)
    with store.reading("count outbox") as conn:
        return Counter({state: int(n) for state, n in conn.execute(query)})


def outbox_counts_by_workflow(store: Store) -> dict[tuple[str, str, str], int]:
    """Outbox rows by (workflow, connection, state), for the service's metrics; absent keys
    have no row."""
    query = sa.select(outbox.c.workflow, outbox.c.connection, outbox.c.state, sa.func.count())
    query = query.group_by(outbox.c.workflow, outbox.c.connection, outbox.c.state)
    with store.reading("count outbox by workflow") as conn:
        return {(str(w), str(c), str(s)): int(n) for w, c, s, n in conn.execute(query)}
