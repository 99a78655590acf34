"""When each workflow first went live on a connection, and how many of the findings it found
then were enrolled today (issue 15, go-live without a flood)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmsync.store.engine import insert_ignoring_duplicates
from crmsync.store.schema import go_live, outbox

if TYPE_CHECKING:
    from crmsync.store.store import Store


def live_since(store: Store, connection: str) -> dict[str, datetime]:
    """The workflows that went live on `connection`, with the moment of their first live plan."""
    with store.reading("read go-live") as conn:
        rows = conn.execute(
            sa.select(go_live.c.workflow, go_live.c.live_since).where(
                go_live.c.connection == connection
            )
        )
        return {w: t for w, t in rows}


def mark_live(
    store: Store, connection: str, workflows: Sequence[tuple[str, str]], now: datetime
) -> None:
    """Record that these (workflow, enroll) went live now; one already recorded keeps its
    first moment."""
    if not workflows:
        return
    with store.writing("record go-live") as conn:
        conn.execute(
            insert_ignoring_duplicates(conn.dialect.name, go_live),
            [
                {"connection": connection, "workflow": w, "live_since": now, "enroll": e}
                for w, e in workflows
            ],
        )


def enrolled_since(store: Store, connection: str, since: datetime) -> Counter[tuple[str, str]]:
    """Findings from a go-live given a task since `since`, per (workflow, owner): what the
    ramp of `enroll: ramp` has used of its day (a task row's payload counts them)."""
    counts: Counter[tuple[str, str]] = Counter()
    with store.reading("count enrolled") as conn:
        rows = conn.execute(
            sa.select(outbox.c.payload).where(
                outbox.c.connection == connection,
                outbox.c.kind == "task.create",
                outbox.c.created_at >= since,
                outbox.c.state.not_in(("cancelled",)),
            )
        )
        for (payload,) in rows:
            for workflow, owner, n in payload.get("enrolled") or []:
                counts[(str(workflow), str(owner))] += int(n)
    return counts
