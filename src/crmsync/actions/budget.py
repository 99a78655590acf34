"""One budget of new tasks per owner per day, across every workflow of a connection.

The planner (crmsync.actions.intents) drafts each workflow's intentions without deciding which
new tasks go out; `settle` then takes the drafts of all the workflows one apply plans on a
connection, together:

- the findings of one deal become ONE task (the highest-ranked finding's key, the others
  listed in its body and holding it open until they all resolve);
- each owner gets at most `limit` new tasks a day, counting what earlier runs of that day
  created; the deals kept are the most important: rule priority (high, normal, low), then
  amount (larger first), then how overdue (earlier close date first, then older finding);
- the rest go into at most ONE digest per owner per day (its key is the owner and the day, so
  a later run that day never makes a second), attached to the most valuable of its deals; a
  later run of a day whose digest exists leaves its extra findings open without a task, and
  they compete for the next day's budget;
- a resolved finding's tasks are closed once no open finding of any workflow holds them;
- findings that were there when their workflow went live with `enroll: ramp` (episodes marked
  "waiting") first compete for the workflow's ramp: at most `ramp` of them per owner a day,
  by the same ranking; the others wait, without a task or a digest line, for a later day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter

from crmsync.actions.keys import complete_key, digest_key, task_key
from crmsync.store.outbox import Episode, OutboxRow, PlanRecord
from crmsync.workflows.plan import Firing
from crmsync.workflows.sales_filters import money
from crmsync.workflows.schema import Rule

DIGEST_LINES = 50
SUBJECT_LIMIT = 255
PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}
NEVER = date.max


@dataclass
class Counts:
    opened: int = 0
    reminded: int = 0
    resolved: int = 0
    digested: int = 0
    waiting: int = 0  # open findings with no task today: a go-live ramp slot, or the budget
    undecided: int = 0  # open findings kept open: a condition or text failed on the deal
    set_aside: int = 0  # firings whose task text failed where it was needed (nothing written)
    by_owner: Counter[str] = field(default_factory=Counter)


@dataclass
class Candidate:
    """A new task one finding asks for, before the owner's budget decides whether it goes out.

    `before` is the episode as it stood before this run, for a reminder (to undo it when the
    reminder has to wait); None for a finding opened (or waiting) without a task."""

    row: OutboxRow
    episode: Episode
    firing: Firing
    before: Episode | None = None


@dataclass
class Closing:
    """A resolved finding whose tasks close, unless another open finding still holds them."""

    rule: Rule | None
    episode: Episode
    note: str


@dataclass
class Draft:
    """One workflow's plan on one connection, before the shared budget is applied."""

    workflow: str
    record: PlanRecord
    counts: Counts
    candidates: list[Candidate] = field(default_factory=list)
    closing: list[Closing] = field(default_factory=list)
    going_live: str | None = None  # the workflow's enroll setting when this plan is its go-live
    ramp: int = 0  # findings from the go-live given tasks per owner a day (0: no ramp)
    over_budget: set[int] = field(default_factory=set)  # id() of episodes the budget held back


@dataclass
class Budget:
    """What `settle` reads besides the drafts: the owners' day, the limit, what is already
    used, and the tasks open findings hold (of every workflow, as stored before this run)."""

    connection: str
    today: date
    limit: int
    used: Counter[str]  # new tasks created so far today, per owner (a digest counts 0)
    held: dict[tuple[str, str, str], str]  # (workflow, rule, opp key) -> task key, open ones
    row_states: Callable[[list[str]], dict[str, str]]  # outbox key -> state
    ramped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (workflow, owner) today


def settle(drafts: Sequence[Draft], budget: Budget) -> None:
    """Apply the budget to the drafts' candidate tasks and close what is no longer held; the
    rows are added to the drafts' records, the counts to their counts."""
    by_name = {d.workflow: d for d in drafts}
    deals: dict[tuple[str, str], list[Candidate]] = {}
    for c in _ramp(drafts, budget):
        deals.setdefault((_owner(c.row), c.episode.opp_key), []).append(c)
    per_owner: dict[str, list[tuple[Rank, list[Candidate]]]] = {}
    for (owner, _), found in deals.items():
        if len(found) > 1:
            found.sort(key=_rank)
        per_owner.setdefault(owner, []).append((_rank(found[0]), found))
    rooms = {owner: max(0, budget.limit - budget.used[owner]) for owner in per_owner}
    # today's digests made by an earlier run, read at once for every owner over the budget
    over = [digest_key(budget.connection, o, budget.today) for o, g in per_owner.items()
            if len(g) > rooms[o]]  # fmt: skip
    digests = set(budget.row_states(over)) if over else set()
    for owner in sorted(per_owner):
        ranked = per_owner[owner]
        ranked.sort(key=itemgetter(0))  # each deal ranked once, by its first finding
        groups = [found for _, found in ranked]
        room = rooms[owner]
        for found in groups[:room]:
            row = _deal_task(found)
            waiting = [c.row.workflow for c in found if c.episode.enroll == "waiting"]
            if waiting:  # (a Counter per deal costs more than the rest of this loop)
                enrolled = Counter(waiting)
                row.payload["enrolled"] = [[wf, owner, n] for wf, n in sorted(enrolled.items())]
            draft = by_name[found[0].row.workflow]
            draft.record.rows.append(row)
            draft.counts.by_owner[owner] += 1
            for c in found:
                c.episode.task_key, c.episode.enroll = row.key, None
        if len(groups) > room:
            _overflow(owner, groups[room:], by_name, budget, digests)
    _close(drafts, budget)


def _ramp(drafts: Sequence[Draft], budget: Budget) -> list[Candidate]:
    """The candidates that may compete for the budget: every new finding, and of the findings
    waiting since the go-live, each owner's `ramp` most important (less those enrolled earlier
    today); the other waiting ones get no task today."""
    out: list[Candidate] = []
    waiting: dict[tuple[str, str], list[Candidate]] = {}
    for d in drafts:
        for c in d.candidates:
            if c.episode.enroll == "waiting" and d.ramp:
                waiting.setdefault((d.workflow, _owner(c.row)), []).append(c)
            else:
                out.append(c)
    by_name = {d.workflow: d for d in drafts}
    for (workflow, owner), found in sorted(waiting.items()):
        found.sort(key=_rank)
        room = max(0, by_name[workflow].ramp - budget.ramped[(workflow, owner)])
        out.extend(found[:room])
        for c in found[room:]:
            _wait(c, by_name[workflow])
    return out


def _owner(row: OutboxRow) -> str:
    return str(row.payload.get("owner_id") or "")


Rank = tuple[int, Decimal, date, datetime, str, str, str]


def _rank(c: Candidate) -> Rank:
    """Most important first: priority, amount (larger first), close date, then older finding."""
    opp = c.firing.opportunity
    return (
        PRIORITY_RANK.get(str(c.row.payload.get("priority")), 1),
        -(opp.amount or Decimal(0)),
        opp.close_date or NEVER,
        c.episode.opened_at,
        opp.key,
        c.row.workflow,
        c.row.rule or "",
    )


def _deal_task(found: list[Candidate]) -> OutboxRow:
    """One task for all of a deal's new findings: the first one's, listing the others."""
    first = found[0].row
    if len(found) == 1:
        return first
    more = len(found) - 1
    subject = (
        f"{first.payload['subject']} (and {more} more {'finding' if more == 1 else 'findings'})"
    )
    parts = []
    for c in found:
        text = str(c.row.payload["subject"])
        if c.row.payload.get("body"):
            text += "\n" + str(c.row.payload["body"])
        parts.append(text)
    payload = {
        **first.payload,
        "subject": subject[:SUBJECT_LIMIT],
        "body": "\n\n".join(parts),
        "priority": min((str(c.row.payload.get("priority")) for c in found),
                        key=lambda p: PRIORITY_RANK.get(p, 1)),
    }  # fmt: skip
    return OutboxRow(first.key, first.connection, first.workflow, first.rule, first.opp_key,
                     first.native_id, first.kind, payload)  # fmt: skip


def _overflow(
    owner: str,
    groups: list[list[Candidate]],
    by_name: dict[str, Draft],
    budget: Budget,
    digests: set[str],
) -> None:
    """The owner's deals over today's budget: into today's digest, or, when it exists already
    (an earlier run today made it: among `digests`), left open without a task until a later
    day's budget."""
    key = digest_key(budget.connection, owner, budget.today)
    if key in digests:
        for found in groups:
            for c in found:
                _wait(c, by_name[c.row.workflow], budget=True)
        return
    top = max(groups, key=lambda g: g[0].firing.opportunity.amount or Decimal(0))[0]
    lines = [_digest_line(g) for g in groups[:DIGEST_LINES]]
    if len(groups) > DIGEST_LINES:
        rest = len(groups) - DIGEST_LINES
        lines.append(f"... and {rest} more {'deal' if rest == 1 else 'deals'}.")
    first_due = min((c for g in groups for c in g), key=lambda c: str(c.row.payload["due_date"]))
    need = "deal needs" if len(groups) == 1 else "deals need"
    payload = {
        "subject": f"{len(groups)} more {need} attention",
        "body": f"Over today's limit of {budget.limit} new tasks, so gathered here:\n"
        + "\n".join(lines),
        "priority": min((str(g[0].row.payload.get("priority")) for g in groups),
                        key=lambda p: PRIORITY_RANK.get(p, 1)),
        "owner_id": top.row.payload.get("owner_id"),
        "owner": top.row.payload.get("owner"),
        "opportunity": top.firing.opportunity.name,
        "due_date": first_due.row.payload["due_date"],
        "due_at": first_due.row.payload["due_at"],
        "counts_as": 0,  # not one of the owner's tasks of the day
    }  # fmt: skip
    row = top.row
    draft = by_name[row.workflow]
    draft.record.rows.append(
        OutboxRow(key, row.connection, row.workflow, None, row.opp_key, row.native_id,
                  "task.create", payload)
    )  # fmt: skip
    draft.counts.by_owner[owner] += 1
    for found in groups:
        for c in found:
            c.episode.task_key, c.episode.enroll = key, None
            by_name[c.row.workflow].counts.digested += 1


def _digest_line(found: list[Candidate]) -> str:
    """`- Acme renewal (USD 25,000): no activity for 15 days; add a next step`."""
    opp = found[0].firing.opportunity
    worth = f" ({money(opp.amount, opp.currency)})" if opp.amount is not None else ""
    said = [_finding(str(c.row.payload["subject"]), opp.name) for c in found]
    return f"- {opp.name}{worth}: {'; '.join(dict.fromkeys(said))}"


def _finding(subject: str, name: str) -> str:
    """A task subject without the deal's name in front (the digest line names the deal)."""
    for prefix in (f"Reminder: {name}: ", f"{name}: ", f"{name} - ", f"{name} "):
        if subject.startswith(prefix) and len(subject) > len(prefix):
            return subject[len(prefix) :]
    return subject


def _wait(c: Candidate, draft: Draft, *, budget: bool = False) -> None:
    """No task today: a new finding stays open without one, a reminder is not counted sent.
    `budget`: the owner's budget held it back (past its ramp slot, if it had one)."""
    ep = c.episode
    if budget:
        draft.over_budget.add(id(ep))
    if c.before is None:
        ep.task_key, ep.last_task_on = None, None
        draft.counts.waiting += 1
    else:
        ep.task_key, ep.reminders = c.before.task_key, c.before.reminders
        ep.last_task_on = c.before.last_task_on
        draft.counts.reminded -= 1


def _close(drafts: Sequence[Draft], budget: Budget) -> None:
    """Complete (or cancel, when never sent) the tasks of resolved findings that no open
    finding holds any more, after this run's changes to every workflow's findings."""
    held = dict(budget.held)
    for d in drafts:
        for ep in d.record.episodes:
            where = (ep.workflow, ep.rule, ep.opp_key)
            if ep.state == "open" and ep.task_key:
                held[where] = ep.task_key
            else:
                held.pop(where, None)
    still = set(held.values())
    for d in drafts:
        for closing in d.closing:
            keys = [k for k in _task_keys(closing) if k not in still]
            states = budget.row_states(keys) if keys else {}
            for key in keys:
                state = states.get(key)
                if state in ("planned", "failed"):
                    d.record.cancel.append(key)
                elif state in ("sent", "confirmed"):
                    ep = closing.episode
                    d.record.rows.append(
                        OutboxRow(complete_key(key), ep.connection, ep.workflow, ep.rule,
                                  ep.opp_key, ep.native_id, "task.complete",
                                  {"task_key": key, "note": closing.note})
                    )  # fmt: skip


def _task_keys(closing: Closing) -> list[str]:
    """Every task a finding may have made: its own first task and reminders, and the task it
    was folded into (another finding's, or a digest)."""
    ep = closing.episode
    remind = closing.rule.actions.remind if closing.rule is not None else None
    count = ep.reminders + 1 if remind is not None and remind.mode == "new_task" else 1
    own = [task_key(ep.workflow, ep.rule, ep.opp_key, ep.occurrence, i) for i in range(count)]
    return list(dict.fromkeys([*own, *([ep.task_key] if ep.task_key else [])]))
