"""What an edit to a workflow file would change: both versions evaluated over the store, their
firings compared per (rule, deal). Read-only: nothing is written to the store or any CRM.

A firing *starts* when the new version fires a rule on a deal the old one did not, *stops* in
the opposite case, and *changes action* when both fire it but the flag or the task differs
(flag field or value; task subject, body, due date, priority or reminder). Firings are keyed by
rule id, so a renamed rule stops under its old id and starts under its new one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from crmsync.actions.undecided import Undecided
from crmsync.app.plan import mappings
from crmsync.config import Config
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.store import Store
from crmsync.workflows.load import LoadedWorkflow, load_workflow
from crmsync.workflows.plan import Firing, evaluate
from crmsync.workflows.render import PlannedAction

__all__ = [
    "Change",
    "ConnectionDiff",
    "DealRef",
    "RuleDiff",
    "WorkflowDiff",
    "diff_workflows",
    "load_pair",
]

# What "the same action" compares, per kind of action.
_COMPARED = {
    "flag": ("field", "value"),
    "task": ("subject", "body", "due_date", "priority", "remind_every_days", "remind_mode"),
}


@dataclass(frozen=True)
class DealRef:
    """A deal named in an example: its key, name and owner."""

    key: str
    name: str | None
    owner: str | None


@dataclass(frozen=True)
class Change:
    """A deal whose action changed: each changed part (e.g. ``task.due_date``) as (old, new)."""

    deal: DealRef
    parts: dict[str, tuple[str | None, str | None]]


@dataclass
class RuleDiff:
    """One rule on one connection: firings before and after, and what moved, with examples."""

    rule: str
    before: int = 0
    after: int = 0
    started: int = 0
    stopped: int = 0
    changed: int = 0
    # fired before; the new version's condition (or text) fails on the deal: apply keeps it open
    undecided: int = 0
    changed_parts: Counter[str] = field(default_factory=Counter)
    start_examples: list[DealRef] = field(default_factory=list)
    stop_examples: list[DealRef] = field(default_factory=list)
    change_examples: list[Change] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        return bool(self.started or self.stopped or self.changed or self.undecided)


@dataclass
class ConnectionDiff:
    """Both versions on one connection: deals read, in scope before and after, and each rule."""

    connection: str
    evaluated: int = 0
    in_scope_before: int = 0
    in_scope_after: int = 0
    rules: list[RuleDiff] = field(default_factory=list)

    def total(self, what: str) -> int:
        return sum(int(getattr(r, what)) for r in self.rules)


@dataclass
class WorkflowDiff:
    """The comparison of two versions of a workflow over every connection either one covers."""

    old: LoadedWorkflow
    new: LoadedWorkflow
    now: datetime
    connections: list[ConnectionDiff]

    def total(self, what: str) -> int:
        return sum(c.total(what) for c in self.connections)


_Signature = tuple[tuple[tuple[str, str | None], ...], ...]


def load_pair(config: Config, old: Path, new: Path) -> tuple[LoadedWorkflow, LoadedWorkflow]:
    """Both files, each checked as `validate -c` checks it (an InvalidInput names file:line:col)."""
    maps = mappings(config)
    return load_workflow(old, connections=maps), load_workflow(new, connections=maps)


def diff_workflows(
    config: Config,
    old: LoadedWorkflow,
    new: LoadedWorkflow,
    now: datetime,
    *,
    connections: Sequence[str] = (),
    examples: int = 5,
) -> WorkflowDiff:
    """Evaluate `old` and `new` over the store as of `now` and compare their firings."""
    maps = mappings(config)
    chosen = [config.connection(n).name for n in connections] if connections else list(maps)
    out: list[ConnectionDiff] = []
    store = Store.open(config.store.url, create=False)
    try:
        for name in chosen:
            if not (_covers(old, name) or _covers(new, name)):
                continue
            out.append(_diff_one(store, name, maps, old, new, now, examples))
    finally:
        store.close()
    return WorkflowDiff(old, new, now, out)


def _covers(loaded: LoadedWorkflow, connection: str) -> bool:
    scoped = loaded.workflow.scope.connections
    return scoped is None or connection in scoped


def _diff_one(
    store: Store,
    connection: str,
    maps: dict[str, CrmMapping],
    old: LoadedWorkflow,
    new: LoadedWorkflow,
    now: datetime,
    examples: int,
) -> ConnectionDiff:
    mapping = maps[connection]
    before: dict[tuple[str, str], tuple[_Signature, DealRef]] = {}

    def remember(f: Firing) -> None:
        before[(f.rule_id, f.opportunity.key)] = (_signature(f.actions), _ref(f))

    first = evaluate(old, store, connection, now, mapping=mapping, on_firing=remember)
    order = [r.id for r in old.workflow.rules] + [r.id for r in new.workflow.rules]
    rules = {rule_id: RuleDiff(rule_id) for rule_id in order}  # every rule, in file order

    def rule(rule_id: str) -> RuleDiff:
        found = rules.get(rule_id)
        if found is None:
            found = rules[rule_id] = RuleDiff(rule_id)
        return found

    for rule_id, _key in before:
        rule(rule_id).before += 1

    def compare(f: Firing) -> None:
        r = rule(f.rule_id)
        r.after += 1
        was = before.pop((f.rule_id, f.opportunity.key), None)
        if was is None:
            r.started += 1
            if len(r.start_examples) < examples:
                r.start_examples.append(_ref(f))
            return
        parts = _changed_parts(was[0], _signature(f.actions))
        if parts:
            r.changed += 1
            r.changed_parts.update(parts.keys())
            if len(r.change_examples) < examples:
                r.change_examples.append(Change(_ref(f), parts))

    undecided = Undecided()
    kept = {r.id for r in new.workflow.rules}
    second = evaluate(
        new, store, connection, now, mapping=mapping, on_firing=compare, on_undecided=undecided
    )
    for (rule_id, key), (_sig, ref) in before.items():  # key order: the old evaluation's
        r = rule(rule_id)
        if rule_id in kept and undecided and undecided.covers(rule_id, key):
            r.undecided += 1  # as apply: unknown is not fixed (a removed rule's stop firing)
            continue
        r.stopped += 1
        if len(r.stop_examples) < examples:
            r.stop_examples.append(ref)
    return ConnectionDiff(
        connection,
        evaluated=max(first.evaluated, second.evaluated),
        in_scope_before=first.in_scope,
        in_scope_after=second.in_scope,
        rules=list(rules.values()),
    )


def _ref(f: Firing) -> DealRef:
    opp = f.opportunity
    return DealRef(opp.key, opp.name, opp.owner_name or opp.owner_id)


def _signature(actions: list[PlannedAction]) -> _Signature:
    """The compared parts of a firing's actions, as text (dates as ISO), by kind."""
    return tuple(
        (("kind", a.kind), *((name, _text(getattr(a, name))) for name in _COMPARED[a.kind]))
        for a in sorted(actions, key=lambda a: a.kind)
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    iso = getattr(value, "isoformat", None)
    return str(iso()) if callable(iso) else str(value)


def _changed_parts(old: _Signature, new: _Signature) -> dict[str, tuple[str | None, str | None]]:
    """Each part that differs, named `kind.part` (``task`` alone when one side has no task)."""
    if old == new:
        return {}
    olds, news = dict(_by_kind(old)), dict(_by_kind(new))
    parts: dict[str, tuple[str | None, str | None]] = {}
    for kind in sorted(set(olds) | set(news)):
        a, b = olds.get(kind), news.get(kind)
        if a is None or b is None:
            parts[kind] = ("none" if a is None else "yes", "none" if b is None else "yes")
            continue
        for name, value in a.items():
            if b.get(name) != value:
                parts[f"{kind}.{name}"] = (value, b.get(name))
    return parts


def _by_kind(sig: _Signature) -> Iterator[tuple[str, dict[str, str | None]]]:
    for action in sig:
        values = dict(action)
        yield str(values.pop("kind")), values
