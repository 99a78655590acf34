"""Write-back history written through the store's public functions, for the `audit` and
`workflows` command tests: two workflows sharing a rule id, a merged flag write, a digest."""

from __future__ import annotations

from datetime import UTC, datetime

from crmsync.store import Store
from crmsync.store.outbox import (
    Episode,
    OutboxRow,
    PlanRecord,
    Transition,
    record_plan,
    rows_by_key,
    transition,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _episode(workflow: str, rule: str, n: int, state: str = "open") -> Episode:
    return Episode(
        workflow, rule, f"hs:{n}", "hs", str(n), "o1", state, 1, NOW, NOW,
        resolved_at=LATER if state == "resolved" else None, task_key=f"t{n}",
    )  # fmt: skip


def _row(key: str, workflow: str, rule: str | None, n: int, kind: str) -> OutboxRow:
    return OutboxRow(key, "hs", workflow, rule, f"hs:{n}", str(n), kind, {"subject": key})


def seed(store: Store) -> None:
    """`wf` and `other` both have a rule `big-deal`. `wf`: 3 findings (2 open, 1 resolved),
    4 tasks created (3 findings' and a digest; the resolved finding's completed, so 2 open),
    one merged flag write parked; `other`: 1 open finding, its task planned (pending). The
    last scheduled run of `wf` was ok."""
    plan = PlanRecord(
        episodes=[
            _episode("wf", "big-deal", 1),
            _episode("wf", "big-deal", 2),
            _episode("wf", "stale", 3, "resolved"),
            _episode("other", "big-deal", 4),
        ],
        rows=[
            _row("t1", "wf", "big-deal", 1, "task.create"),
            _row("t2", "wf", "big-deal", 2, "task.create"),
            _row("t3", "wf", "stale", 3, "task.create"),
            _row("d1", "wf", None, 2, "task.create"),
            _row("c3", "wf", "stale", 3, "task.complete"),
            _row("f1", "wf", None, 1, "flag.write"),
            _row("t4", "other", "big-deal", 4, "task.create"),
        ],
    )
    record_plan(store, plan, NOW)
    rows = rows_by_key(store, ["t1", "t2", "t3", "d1", "c3", "f1"])
    done = [Transition(k, "confirmed", crm_id=f"crm-{k}") for k in ("t1", "t2", "t3", "d1", "c3")]
    transition(store, rows, [*done, Transition("f1", "parked", error="INVALID_FIELD")], LATER)
    store.record_job_run("workflow:wf", started_at=LATER, finished_at=LATER, status="ok")
