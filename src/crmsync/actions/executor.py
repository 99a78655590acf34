"""Sending the outbox: batched CRM writes, each effect exactly once, nothing silently lost.

Every batch is marked `sent` (committed) before the call and its results recorded (committed)
after. A task whose send may or may not have reached the CRM (a crash, a dropped connection, a
failed answer) is looked up by its idempotency key before it is sent again. Flag writes are
skipped when the record changed since crmsync read it, so a rep's edit is never overwritten;
tasks are read back before a due date is moved or a task completed, so a rep who deleted,
completed or re-dated a task keeps it so (crmsync.actions.readback).
Per-record failures are retried while they can succeed later, then parked with the CRM's words.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from crmsync.actions import readback
from crmsync.connectors.base import Write, Writer
from crmsync.errors import CrmApiError, CrmUnavailable, QuotaStop
from crmsync.model.records import Cursor
from crmsync.store import Store
from crmsync.store.outbox import (
    OutboxRow,
    Transition,
    count_pending,
    pending,
    record_stamps,
    rows_by_key,
    transition,
)
from crmsync.store.rep_tasks import leave_to_rep, snoozed_days, written_dues

log = structlog.get_logger("crmsync.actions")

ORDER = ("task.create", "task.due", "task.complete", "flag.write")
CHANGED = "the record changed in the CRM after crmsync read it; re-planned next cycle"
SUPERSEDED = (
    "superseded by a later flag write to the same field of this record ({key}, planned by "
    "{workflow}), which carries every workflow's flags; one write per record and field"
)


@dataclass
class ExecSummary:
    """What one pass over a connection's outbox did."""

    connection: str
    created: int = 0
    updated: int = 0  # due dates moved
    completed: int = 0
    flagged: int = 0
    found: int = 0  # tasks found already in the CRM after an unknown outcome
    parked: int = 0
    skipped: int = 0
    superseded: int = 0  # flag writes replaced by a later one to the same record and field
    kept: int = 0  # task updates not sent: the rep deleted, completed or re-dated the task
    left: int = 0  # still pending (quota stop, or retries to come)
    api_calls: int = 0
    stopped: str | None = None


class Executor:
    """Sends one connection's pending outbox rows through its connector."""

    def __init__(
        self,
        store: Store,
        writer: Writer,
        connection: str,
        *,
        cursor: Callable[[], Cursor | None],
        max_attempts: int = 5,
        batch_size: int | None = None,
        retry_pause: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        keep_lock: Callable[[], bool] = lambda: True,
        recorded: Iterable[OutboxRow] = (),
    ) -> None:
        """`recorded`: outbox rows this process has just recorded (a plan's new rows, as
        `record_plan` stored them): the first pass takes them as they are when the outbox
        still holds them so, instead of reading and decoding them again."""
        self.store = store
        self.writer = writer
        self.connection = connection
        self.cursor = cursor
        self.max_attempts = max_attempts
        self.batch_size = min(batch_size or writer.write_batch_size, writer.write_batch_size)
        self.retry_pause = retry_pause
        self.clock = clock
        self.keep_lock = keep_lock
        self.summary = ExecSummary(connection)
        self._rows: dict[str, OutboxRow] = {}
        self._recorded = {r.key: r for r in recorded}
        self._later: list[Transition] = []  # a batch's outcomes, recorded with the next move
        self._later_forget: list[tuple[str, str, str]] = []

    def run(self, workflows: Sequence[str] | None = None) -> ExecSummary:
        calls = self.writer.meter.calls
        try:
            for attempt in range(self.max_attempts):
                rows = pending(self.store, self.connection, workflows, known=self._recorded)
                self._recorded = {}  # later passes read what this one left
                if not rows:
                    break
                if attempt:
                    time.sleep(self.retry_pause * attempt)
                self._rows = {r.key: r for r in rows}
                held: set[str] = set()  # rows that cannot go out in this pass
                unsure = [r for r in rows if r.kind == "task.create" and _unsure(r)]
                flags = self._coalesce([r for r in rows if r.kind == "flag.write"])
                updates = [r for r in rows if r.kind in readback.UPDATES]
                for check, items in (
                    (self._reconcile, unsure),
                    (self._check_flags, flags),
                    (self._read_back, updates),  # after _reconcile: tasks found get their ids
                ):
                    try:
                        check(items)
                    except CrmUnavailable as e:  # cannot vouch for them now: next pass
                        held.update(r.key for r in items)
                        log.warning("apply.check_failed", connection=self.connection, error=str(e))
                for kind in ORDER:
                    self._send_kind(kind, held)
            self._give_up(workflows)
        except (QuotaStop, LockLost) as e:
            self.summary.stopped = str(e)
            log.warning("apply.stopped", connection=self.connection, reason=str(e))
        self.summary.left = count_pending(self.store, self.connection, workflows)
        self.summary.api_calls = self.writer.meter.calls - calls
        return self.summary

    # ---- before sending ---------------------------------------------------------------
    def _coalesce(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """One flag write per (record, field): each workflow's plan writes the whole field
        (its flags and the other workflows' open ones), so the latest planned carries them
        all; the earlier ones are skipped with a word in the audit. Sending both would cost a
        write each, and the first one's new stamp would make the second look like a rep's
        edit; HubSpot also refuses a batch naming one record twice."""
        latest: dict[tuple[str, str], OutboxRow] = {}
        for r in rows:  # in planning order (seq): a later row replaces an earlier one
            latest[(r.native_id, str(r.payload["field"]))] = r
        keep = {r.key for r in latest.values()}
        dropped = [r for r in rows if r.key not in keep]
        if dropped:
            self.summary.superseded += len(dropped)
            self._move(
                [
                    Transition(
                        r.key, "skipped", detail=SUPERSEDED.format(key=w.key, workflow=w.workflow)
                    )
                    for r in dropped
                    for w in [latest[(r.native_id, str(r.payload["field"]))]]
                ]
            )
        return [r for r in rows if r.key in keep]

    def _reconcile(self, rows: list[OutboxRow]) -> None:
        """Tasks that may exist already: ask the CRM by key, and confirm the ones it has."""
        if not rows:
            return
        found = self.writer.find_tasks([r.key for r in rows])
        changes = [
            Transition(r.key, "confirmed", crm_id=found[r.key], detail="found in the CRM by key")
            for r in rows
            if r.key in found
        ]
        self.summary.found += len(changes)
        self.summary.created += len(changes)
        self._move(changes)

    def _check_flags(self, rows: list[OutboxRow]) -> None:
        """Never overwrite a rep: a record changed since crmsync read it is written only when
        its flag field still holds what the plan was based on; when it already holds the new
        value (an earlier send that landed), there is nothing to do."""
        live = [r for r in rows if r.state in ("planned", "sent", "failed")]
        if not live:
            return
        names = sorted({str(r.payload["field"]) for r in live})
        changed = self.writer.changed_since(self.cursor(), names)
        skip, done = [], []
        stamps = record_stamps(self.store, sorted({r.opp_key for r in live}))
        for r in live:
            field, value = str(r.payload["field"]), r.payload.get("value") or None
            if changed is not None and r.native_id in changed:
                if (changed[r.native_id].get(field) or None) == value:
                    done.append(r)  # an earlier send landed
                else:
                    skip.append(r)  # edited in the CRM since it was read: re-plan it first
                continue
            stamp = stamps.get(r.opp_key)  # (deleted, modified_at) as stored now
            if (
                changed is None  # no completed sync to vouch for anything
                or stamp is None
                or stamp[0]
                or (r.payload.get("based_on") not in (None, stamp[1].isoformat()))
            ):
                skip.append(r)  # the store moved on since the plan: re-plan it first
        self.summary.skipped += len(skip)
        self._move([Transition(r.key, "confirmed", detail="already so in the CRM") for r in done])
        self._move(
            [Transition(r.key, "skipped", detail=CHANGED) for r in skip],
            forget=[(r.connection, r.opp_key, str(r.payload["field"])) for r in skip],
        )

    def _read_back(self, rows: list[OutboxRow]) -> None:
        """Read the tasks of due-date moves and completions back from the CRM in one pass (one
        call per 200 Salesforce or 100 HubSpot tasks) and leave what a rep changed as the rep
        left it. Updates of tasks created later in this pass go out unread (nobody has seen
        those tasks yet)."""
        ready = self._with_task_ids([r for r in rows if r.state in ("planned", "sent", "failed")])
        if not ready:
            return
        states = self.writer.read_tasks(sorted({str(r.payload["task_id"]) for r in ready}))
        tasks = {str(r.payload["task_key"]): r.opp_key for r in ready}
        verdict = readback.judge(
            ready,
            states,
            rows_by_key(self.store, sorted(tasks)),
            written_dues(self.store, self.connection, tasks.items()),
            self.clock(),
            snoozed_days(self.store, self.connection, tasks),
        )
        leave_to_rep(self.store, self.connection, verdict.marks)
        self.summary.kept += verdict.kept
        self.summary.skipped += verdict.kept
        self.summary.completed += verdict.completed
        self.summary.updated += verdict.updated
        self._move(verdict.changes)

    # ---- sending ----------------------------------------------------------------------
    def _send_kind(self, kind: str, held: set[str]) -> None:
        rows = [
            r
            for r in self._rows.values()
            if r.kind == kind and r.state in ("planned", "sent", "failed") and r.key not in held
        ]
        if kind in ("task.due", "task.complete"):
            rows = self._with_task_ids(rows)
        size = self.batch_size
        try:
            for start in range(0, len(rows), size):
                if not self.keep_lock():
                    raise LockLost(
                        f"the apply lock of connection {self.connection} was lost (it expired "
                        "and another apply took it); the rest is left for the next apply"
                    )
                self._send(kind, [r for r in rows[start : start + size] if r.key in self._rows])
        finally:
            self._move([])  # the last batch's outcomes

    def _with_task_ids(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """Updates need their task's CRM id; a task that was never created cannot be updated."""
        tasks = rows_by_key(self.store, [str(r.payload["task_key"]) for r in rows])
        ready, skip = [], []
        for r in rows:
            task = tasks.get(str(r.payload["task_key"]))
            if task is not None and task.state == "confirmed" and task.crm_id:
                r.payload["task_id"] = task.crm_id
                ready.append(r)
            elif task is None or task.state in ("parked", "cancelled", "skipped"):
                skip.append(r)
        self.summary.skipped += len(skip)
        self._move(
            [Transition(r.key, "skipped", detail="its task was never created") for r in skip]
        )
        return ready

    def _send(self, kind: str, rows: list[OutboxRow], *, marked: bool = False) -> None:
        if not marked:
            lost = self._move([Transition(r.key, "sent", attempts=r.attempts + 1) for r in rows])
            rows = [r for r in rows if r.key not in lost]  # another apply has those
            if not rows:
                return
        writes = [
            Write(r.key, kind, r.native_id, r.payload, task_id=r.payload.get("task_id"))
            for r in rows
        ]
        try:
            results = self.writer.write(kind, writes)
        except QuotaStop:
            # refused before sending (the guard) or by the CRM: nothing was written
            self._move([Transition(r.key, "planned", attempts=r.attempts - 1) for r in rows])
            raise
        except CrmUnavailable as e:  # the whole call kept failing: every row may work later
            for r in rows:
                self._failed(r, str(e), retryable=True)
            return
        except CrmApiError as e:
            if len(rows) > 1:  # the CRM refused the whole batch: find the input it objects to
                half = len(rows) // 2
                self._send(kind, rows[:half], marked=True)
                self._send(kind, rows[half:], marked=True)
                return
            self._failed(rows[0], str(e), retryable=False)
            return
        changes, changed = [], []
        for r, res in zip(rows, results, strict=True):
            if res.ok:
                changes.append(Transition(r.key, "confirmed", crm_id=res.crm_id))
                self._count(kind)
            elif res.changed:  # the CRM's conditional update found a newer edit: the rep wins
                self.summary.skipped += 1
                changes.append(Transition(r.key, "skipped", detail=CHANGED))
                changed.append((r.connection, r.opp_key, str(r.payload["field"])))
            elif res.retryable and r.attempts < self.max_attempts:
                changes.append(Transition(r.key, "failed", error=res.error))
            else:
                self.summary.parked += 1
                changes.append(Transition(r.key, "parked", error=res.error))
        # recorded with the next batch's `sent` marks, in its transaction (before its call):
        # one commit per call, not two; a crash before it leaves these `sent`, to be checked
        self._later.extend(changes)
        self._later_forget.extend(changed)

    def _failed(self, row: OutboxRow, error: str, *, retryable: bool) -> None:
        if retryable and row.attempts < self.max_attempts:
            self._move([Transition(row.key, "failed", error=error)])
        else:
            self.summary.parked += 1
            self._move([Transition(row.key, "parked", error=error)])

    def _give_up(self, workflows: Sequence[str] | None) -> None:
        """Rows that used every attempt are parked with their last error (never left hanging)."""
        rows = pending(
            self.store,
            self.connection,
            workflows,
            states=("failed",),
            min_attempts=self.max_attempts,
        )
        self._rows.update({r.key: r for r in rows})
        self.summary.parked += len(rows)
        self._move(
            [
                Transition(
                    r.key,
                    "parked",
                    error=f"gave up after {r.attempts} attempts: {r.error or 'no answer'}",
                )
                for r in rows
            ]
        )

    def _count(self, kind: str) -> None:
        if kind == "task.create":
            self.summary.created += 1
        elif kind == "task.due":
            self.summary.updated += 1
        elif kind == "task.complete":
            self.summary.completed += 1
        else:
            self.summary.flagged += 1

    def _move(
        self, changes: list[Transition], forget: Sequence[tuple[str, str, str]] = ()
    ) -> set[str]:
        """Record state changes (after the outcomes held back for this transaction); returns
        the keys another process moved first (left as they are, and dropped from this pass)."""
        if self._later:
            changes, self._later = [*self._later, *changes], []
            forget, self._later_forget = [*self._later_forget, *forget], []
        lost = transition(self.store, self._rows, changes, self.clock(), forget_flags=forget)
        if lost:
            log.warning(
                "apply.rows_taken",
                connection=self.connection,
                count=len(lost),
                detail="another apply moved these outbox rows first; they are left to it",
            )
        return lost


class LockLost(Exception):
    """This apply no longer holds its connection's lock: it stops sending."""


def _unsure(row: OutboxRow) -> bool:
    """A task create whose earlier send may have reached the CRM."""
    return row.state == "sent" or (row.state == "failed" and row.attempts > 0)
