"""From a plan's firings to intended CRM writes: open, remind and resolve episodes, set flags.

Pure: everything it needs from the store is passed in, and what it returns (a PlanRecord) is
recorded in one transaction before anything is sent. An episode is one rule firing on one
opportunity; it opens when the rule starts firing (a task, a flag), may remind while it keeps
firing, and resolves when it stops (the task completed, the flag cleared).

`draft_writes` plans one workflow and leaves its new tasks as candidates: the owners' daily
budget over all of a connection's workflows decides which go out (crmsync.actions.budget).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from crmsync.actions.budget import Budget, Candidate, Closing, Counts, Draft, settle
from crmsync.actions.keys import due_key, flag_key, task_key
from crmsync.actions.undecided import Undecided
from crmsync.model import Opportunity
from crmsync.store.outbox import AuditEntry, Episode, OutboxRow, PlanRecord
from crmsync.workflows.firing import FailureLog
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.plan import Firing
from crmsync.workflows.schema import ResolveAction, Rule
from crmsync.workflows.templates import TemplateError

# What a finding found at the go-live is marked, by the workflow's `enroll`: "held" gets no
# task (none), "waiting" waits for its ramp slot (ramp); all: none, as any new finding.
ENROLL = {"none": "held", "ramp": "waiting"}
DISMISSAL_OVER = "the deal changed since the rep dismissed the task; a new finding starts"
DUE_TIME = time(17, 0)  # HubSpot tasks are due at a moment: the end of the business day
FLAG_SEPARATOR = ";"


@dataclass
class Context:
    """What the planner reads from the store, handed in so that it stays pure."""

    connection: str
    now: datetime
    today: date
    max_tasks_per_owner_per_day: int
    episodes: dict[tuple[str, str], Episode]
    tasks_today: Counter[str]  # new tasks already recorded today, per owner
    other_flags: dict[tuple[str, str], set[str]]  # open flags of the other workflows
    flag_state: dict[tuple[str, str], str | None]  # what crmsync last wrote
    flag_tokens: set[str]  # every flag value any workflow may set (crmsync's own tokens)
    records: Callable[[list[str]], dict[str, Opportunity]]  # stored records by key
    row_states: Callable[[list[str]], dict[str, str]]  # outbox key -> state
    going_live: str | None = None  # the enroll setting when this plan is the go-live, else None
    # what the evaluation could not decide: those open findings stay open (unknown is not fixed)
    undecided: Undecided = field(default_factory=Undecided)


__all__ = ["Context", "Counts", "Draft", "draft_writes", "plan_writes"]


def plan_writes(
    loaded: LoadedWorkflow, firings: Iterable[Firing], ctx: Context
) -> tuple[PlanRecord, Counts]:
    """One workflow planned alone, its budget settled on its own (apply settles all the
    workflows of a connection together)."""
    draft = draft_writes(loaded, firings, ctx)
    held = {(e.workflow, e.rule, e.opp_key): e.task_key for e in ctx.episodes.values()
            if e.state == "open" and e.task_key}  # fmt: skip
    budget = Budget(ctx.connection, ctx.today, ctx.max_tasks_per_owner_per_day,
                    Counter(ctx.tasks_today), held, ctx.row_states)  # fmt: skip
    settle([draft], budget)
    return draft.record, draft.counts


def draft_writes(loaded: LoadedWorkflow, firings: Iterable[Firing], ctx: Context) -> Draft:
    """The episodes to open, keep and resolve, the flag writes, and the new tasks wanted."""
    wf = loaded.workflow
    rules = {r.id: r for r in wf.rules}
    record = PlanRecord()
    counts = Counts()
    draft = Draft(wf.name, record, counts)
    stamp = ctx.now.isoformat()
    zone = ZoneInfo(loaded.calendar.timezone if loaded.calendar else "UTC")
    fired: set[tuple[str, str]] = set()
    renders = _Renders(wf.name, ctx.connection, counts)

    for f in firings:
        opp = f.opportunity
        rule = rules[f.rule_id]
        acts = rule.actions
        fired.add((rule.id, opp.key))
        ep = ctx.episodes.get((rule.id, opp.key))
        over = ep is not None and _dismissal_over(ep, opp)
        if (ep is None or ep.state != "open" or over) and not renders(f):
            # set aside, as a plan sets it aside: no finding opens, and a dismissed one stays
            # as it is (its flag included) until the new one's text renders
            if ep is not None and ep.state == "open":
                record.episodes.append(ep)
            continue
        if ep is not None and over:
            ep = replace(ep, state="resolved", resolved_at=ctx.now)
            counts.resolved += 1
            record.audit.append(_episode_audit(ep, "resolved", ctx.now, DISMISSAL_OVER))
        if ep is None or ep.state != "open":
            ep = Episode(
                wf.name, rule.id, opp.key, ctx.connection, opp.native_id, opp.owner_id, "open",
                (ep.occurrence if ep else 0) + 1, ctx.now, ctx.now,
                flag_field=acts.flag.field if acts.flag else None,
                flag_value=acts.flag.value if acts.flag else None,
            )  # fmt: skip
            counts.opened += 1
            record.audit.append(_episode_audit(ep, "opened", ctx.now, "; ".join(f.reasons)))
            ep.enroll = ENROLL.get(ctx.going_live or "all")
            if ep.enroll != "held":
                _want_task(draft, wf.name, rule, f, ep, ctx.today, zone)
        else:
            before = ep
            ep = replace(ep, last_seen_at=ctx.now, owner_id=opp.owner_id)
            if ep.left_to_rep == "dismissed" and ep.left_at is None:
                ep.left_at = opp.modified_at  # the deal as it was when the dismissal was seen
            waiting = ep.task_key is None and ep.left_to_rep is None and ep.enroll != "held"
            if waiting and acts.task is not None:
                if renders(f):
                    _want_task(draft, wf.name, rule, f, ep, ctx.today, zone)  # waited for a budget
            elif _reminder_due(rule, ep, ctx.today) and renders(f):
                ep.reminders += 1
                ep.last_task_on = ctx.today
                counts.reminded += 1
                assert acts.remind is not None and ep.task_key is not None
                if acts.remind.mode == "new_task":
                    task = _task_row(wf.name, rule, f, ep, ep.reminders, zone)
                    assert task is not None
                    ep.task_key = task.key
                    draft.candidates.append(Candidate(task, ep, f, before))
                else:
                    due = next(a.due_date for a in f.actions if a.kind == "task")
                    assert due is not None
                    record.rows.append(
                        _row(
                            due_key(ep.task_key, ep.reminders),
                            wf.name,
                            rule.id,
                            opp.key,
                            opp.native_id,
                            ctx.connection,
                            "task.due",
                            {"task_key": ep.task_key, **_due(due, zone)},
                        )
                    )
        record.episodes.append(ep)

    undecided = ctx.undecided
    for (rule_id, key), ep in ctx.episodes.items():
        if ep.state != "open" or (rule_id, key) in fired:
            continue
        gone = rules.get(rule_id)  # None: the rule was removed from the file
        if gone is not None and undecided and undecided.covers(rule_id, key):
            # a condition or text failed on this deal: not a sign the finding is gone. Kept as
            # it is, flag included (the flags wanted are those of the episodes planned here)
            record.episodes.append(ep)
            counts.undecided += 1
            continue
        resolve = gone.actions.resolve if gone is not None else ResolveAction()
        done = replace(ep, state="resolved", resolved_at=ctx.now)
        record.episodes.append(done)
        counts.resolved += 1
        record.audit.append(_episode_audit(done, "resolved", ctx.now, resolve.note))
        if resolve.close_task and ep.task_key:
            draft.closing.append(Closing(gone, done, resolve.note))

    _flags(loaded, record, ctx, stamp)
    return draft


class _Renders:
    """Whether a firing's actions can be built. They are built on first read (apply evaluates
    with `actions_on_read`): only a finding that opens, reminds or wants its task now needs its
    texts. One that cannot be rendered is set aside there, logged once per rule as a plan logs
    it; an open finding stays open (its finding still holds; only its text failed)."""

    def __init__(self, workflow: str, connection: str, counts: Counts) -> None:
        self._failures = FailureLog(workflow, connection)
        self._counts = counts

    def __call__(self, f: Firing) -> bool:
        try:
            f.actions  # noqa: B018 (built and kept on first read)
        except TemplateError as e:
            self._counts.set_aside += 1
            self._failures.render(f.rule_id, f.opportunity.key, e)
            return False
        return True


def _want_task(
    draft: Draft, workflow: str, rule: Rule, f: Firing, ep: Episode, today: date, zone: ZoneInfo
) -> None:
    """A finding's first task, as a candidate for its owner's budget."""
    task = _task_row(workflow, rule, f, ep, 0, zone)
    if task is not None:
        ep.task_key, ep.last_task_on = task.key, today
        draft.candidates.append(Candidate(task, ep, f))


def _dismissal_over(ep: Episode, opp: Opportunity) -> bool:
    """A finding the rep dismissed (its task's status) holds until the deal changes: its
    modification stamp moves past the one it had when crmsync first saw the dismissal (the
    CRM's own stamps, so no clock of crmsync's host is compared with the CRM's)."""
    return (
        ep.state == "open"
        and ep.left_to_rep == "dismissed"
        and ep.left_at is not None
        and opp.modified_at > ep.left_at
    )


def _reminder_due(rule: Rule, ep: Episode, today: date) -> bool:
    remind = rule.actions.remind
    if remind is None or rule.actions.task is None or ep.task_key is None:
        return False
    own = {task_key(ep.workflow, ep.rule, ep.opp_key, ep.occurrence, i) for i in (0, ep.reminders)}
    if ep.task_key not in own or ep.last_task_on is None:
        return False  # folded into a digest or another finding's task: no reminders of its own
    if ep.left_to_rep:
        why, _, day = ep.left_to_rep.partition(":")
        if why != "moved" or today <= date.fromisoformat(day):
            return False  # the rep deleted, completed or dismissed it, or snoozed it till then
    return (today - ep.last_task_on).days >= remind.every_days


def _task_row(
    workflow: str, rule: Rule, f: Firing, ep: Episode, reminder: int, zone: ZoneInfo
) -> OutboxRow | None:
    task = next((a for a in f.actions if a.kind == "task"), None)
    if task is None:
        return None
    opp = f.opportunity
    assert task.due_date is not None and task.subject is not None
    subject = task.subject if reminder == 0 else f"Reminder: {task.subject}"
    payload = {
        "subject": subject[:255],
        "body": task.body or "",
        "priority": task.priority or "normal",
        "owner_id": opp.owner_id,
        "owner": opp.owner_name,
        "opportunity": opp.name,
        **_due(task.due_date, zone),
    }
    key = task_key(workflow, rule.id, opp.key, ep.occurrence, reminder)
    return _row(
        key, workflow, rule.id, opp.key, opp.native_id, ep.connection, "task.create", payload
    )


def _flags(loaded: LoadedWorkflow, record: PlanRecord, ctx: Context, stamp: str) -> None:
    """Flag writes so that each record shows exactly the flags its open episodes call for."""
    want: dict[tuple[str, str], set[str]] = {k: set(v) for k, v in ctx.other_flags.items()}
    for ep in record.episodes:
        if ep.state == "open" and ep.flag_field and ep.flag_value:
            want.setdefault((ep.opp_key, ep.flag_field), set()).add(ep.flag_value)
    changes = [
        (where, sorted(want.get(where, set())), ctx.flag_state.get(where))
        for where in sorted(set(want) | set(ctx.flag_state))
    ]
    changes = [(w, desired, written) for w, desired, written in changes
               if set(desired) != _tokens(written)]  # fmt: skip
    stored = ctx.records(sorted({opp_key for (opp_key, _), _, _ in changes}))
    for (opp_key, name), desired, written in changes:
        target = FLAG_SEPARATOR.join(desired) or None
        record.flags.append((ctx.connection, opp_key, name, target))
        opp = stored.get(opp_key)
        if opp is None or opp.deleted:
            continue  # the record is gone; nothing to write
        now_value = opp.custom.get(name)
        ours = ctx.flag_tokens | _tokens(written) if written else ctx.flag_tokens
        theirs = [t for t in _ordered_tokens(now_value) if t not in ours]
        value = FLAG_SEPARATOR.join(dict.fromkeys([*theirs, *desired])) or None
        if value == (now_value or None):
            continue
        record.rows.append(
            _row(flag_key(ctx.connection, opp_key, name, value, stamp), loaded.name, None,
                 opp_key, opp.native_id, ctx.connection, "flag.write",
                 {"field": name, "value": value, "was": now_value or None,
                  "based_on": opp.modified_at.isoformat()})
        )  # fmt: skip


def _tokens(value: str | None) -> set[str]:
    return set(_ordered_tokens(value))


def _ordered_tokens(value: Any) -> list[str]:
    if not value:
        return []
    return [t.strip() for t in str(value).split(FLAG_SEPARATOR) if t.strip()]


@functools.lru_cache(maxsize=1024)
def _due(due: date, zone: ZoneInfo) -> dict[str, str]:
    """A task's due date and moment (the same few dates for thousands of tasks: kept; callers
    copy the answer into their payload, never change it)."""
    moment = datetime.combine(due, DUE_TIME, zone)
    return {"due_date": due.isoformat(), "due_at": moment.isoformat()}


def _row(
    key: str,
    workflow: str,
    rule: str | None,
    opp_key: str,
    native_id: str,
    connection: str,
    kind: str,
    payload: dict[str, Any],
) -> OutboxRow:
    return OutboxRow(key, connection, workflow, rule, opp_key, native_id, kind, payload)


def _episode_audit(ep: Episode, state: str, at: datetime, detail: str | None) -> AuditEntry:
    return AuditEntry(
        at, f"episode:{ep.workflow}:{ep.rule}:{ep.occurrence}", ep.connection, ep.workflow,
        ep.rule, ep.opp_key, ep.native_id, "episode", state, detail,
    )  # fmt: skip
