"""What each workflow has done per connection, counted from the episodes and the outbox: the
read side of `crmsync workflows`.

Findings are episodes (open or resolved). A task is created when its `task.create` row is
confirmed (a digest task counts once, whatever the findings it gathers), completed when its
`task.complete` row is; an open task is one that an open finding of the workflow that created it
holds, created and not left to the rep (deleted, completed or dismissed by the rep; a rep's new
due date keeps it open). Parked actions are outbox rows crmsync gave up on (any kind), pending
ones those still to be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmsync.store.outbox import PENDING
from crmsync.store.schema import episodes, outbox

if TYPE_CHECKING:
    from crmsync.store.store import Store

__all__ = ["WorkflowCounts", "workflow_counts"]


@dataclass
class WorkflowCounts:
    """One workflow's findings, tasks and actions on one connection."""

    findings_open: int = 0
    findings_resolved: int = 0
    tasks_created: int = 0
    tasks_open: int = 0
    tasks_completed: int = 0
    actions_pending: int = 0
    actions_parked: int = 0


def workflow_counts(store: Store) -> dict[tuple[str, str], WorkflowCounts]:
    """The counts of every (workflow, connection) that has episodes or outbox rows."""
    out: dict[tuple[str, str], WorkflowCounts] = {}

    def of(workflow: str, connection: str) -> WorkflowCounts:
        return out.setdefault((workflow, connection), WorkflowCounts())

    ep = episodes.c
    ob = outbox.c
    # a task the workflow created: an owner's digest, which gathers the findings of every
    # workflow, counts as open once, for the workflow that created it (never more open than made)
    created = sa.exists().where(  # EXISTS: an IN over a correlated list ran once per finding
        ob.key == ep.task_key,
        ob.kind == "task.create",
        ob.state == "confirmed",
        ob.workflow == ep.workflow,
        ob.connection == ep.connection,
    )
    held = sa.or_(ep.left_to_rep.is_(None), ep.left_to_rep.like("moved%"))
    with store.reading("count workflow results") as conn:
        for wf, connection, state, n in conn.execute(
            sa.select(ep.workflow, ep.connection, ep.state, sa.func.count()).group_by(
                ep.workflow, ep.connection, ep.state
            )
        ):
            counts = of(wf, connection)
            if state == "open":
                counts.findings_open += int(n)
            else:
                counts.findings_resolved += int(n)
        for wf, connection, n in conn.execute(
            sa.select(ep.workflow, ep.connection, sa.func.count(sa.distinct(ep.task_key)))
            .where(ep.state == "open", held, created)
            .group_by(ep.workflow, ep.connection)
        ):
            of(wf, connection).tasks_open = int(n)
        for wf, connection, kind, state, n in conn.execute(
            sa.select(ob.workflow, ob.connection, ob.kind, ob.state, sa.func.count()).group_by(
                ob.workflow, ob.connection, ob.kind, ob.state
            )
        ):
            counts = of(wf, connection)
            if state == "confirmed" and kind == "task.create":
                counts.tasks_created += int(n)
            elif state == "confirmed" and kind == "task.complete":
                counts.tasks_completed += int(n)
            elif state == "parked":
                counts.actions_parked += int(n)
            elif state in PENDING:
                counts.actions_pending += int(n)
    return out
