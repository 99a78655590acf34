"""`crmsync plan --opportunity`: find one deal in the store and explain every workflow on it.

The deal is named by its key (``connection:CRM id``), its CRM id, or its name (case-insensitive);
a name that several deals share is an `AmbiguousOpportunity` listing them. Each workflow is
explained by `crmsync.workflows.explain` with the deal's history, its connection's stage mapping,
and (for percentile rules) the pipeline's stage durations; nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from crmsync.actions.routing import route_firings
from crmsync.app.modes import effective_mode
from crmsync.app.plan import workflows_for
from crmsync.config import Config, load_config
from crmsync.config.schema import Routing
from crmsync.errors import InvalidInput
from crmsync.model import Opportunity
from crmsync.model.owners import OwnerEntry
from crmsync.model.text import cut
from crmsync.store import Store
from crmsync.store.outbox import Episode, load_episodes
from crmsync.store.owners import load_owners
from crmsync.workflows.explain import Explanation, RuleExplanation, explain
from crmsync.workflows.plan import Firing, needs_durations
from crmsync.workflows.readers import stage_durations, summarizer_for

__all__ = ["AmbiguousOpportunity", "explain_opportunity", "find_opportunity"]

MATCH_LIMIT = 20  # deals listed when a name is ambiguous


class AmbiguousOpportunity(InvalidInput):
    """A name several stored deals share; `matches` lists them (at most MATCH_LIMIT)."""

    def __init__(self, ref: str, matches: list[Opportunity]) -> None:
        more = "+" if len(matches) >= MATCH_LIMIT else ""
        super().__init__(
            f"{len(matches)}{more} opportunities are named {cut(ref, 80)!r}; "
            "pass one's id (connection:id as listed) to --opportunity"
        )
        self.matches = matches


def find_opportunity(store: Store, ref: str, connections: Sequence[str] = ()) -> Opportunity:
    """The one stored deal `ref` names, on one of `connections` (any when empty)."""
    found = [
        o
        for o in store.find(ref.strip(), limit=MATCH_LIMIT)
        if not connections or o.connection in connections
    ]
    if not found:
        raise InvalidInput(
            f"no opportunity {cut(ref, 80)!r} in the store (give its CRM id, "
            "connection:id, or its exact name; `crmsync sync` first if it is new)"
        )
    if len(found) > 1:
        raise AmbiguousOpportunity(ref, found)
    return found[0]


def explain_opportunity(
    config_path: Path,
    ref: str,
    *,
    workflows: Sequence[str] = (),
    connections: Sequence[str] = (),
    now: datetime | None = None,
    config: Config | None = None,
) -> tuple[Opportunity, list[Explanation]]:
    """The deal `ref` names and each workflow's explanation of it (out-of-scope ones too)."""
    config = config or load_config(config_path)
    loaded, maps = workflows_for(config, (), workflows)
    chosen = [config.connection(n).name for n in connections]
    now = now or datetime.now(UTC)
    store = Store.open(config.store.url, create=False)
    try:
        opp = find_opportunity(store, ref, chosen)
        mapping = maps.get(opp.connection)
        canonical_of = summarizer_for(mapping).canonical_of
        history = store.history(opp.key)
        durations = None
        if any(needs_durations(wf.workflow.rules) for wf in loaded):
            durations = stage_durations(store, opp.connection, canonical_of)
        directory = load_owners(store, opp.connection)
        routing = config.connection(opp.connection).routing
        out = []
        for wf in loaded:
            e = explain(wf, opp, history, now, canonical_of=canonical_of, durations=durations)
            mode = effective_mode(config, wf, opp.connection)
            e.mode = str(mode)
            findings = load_episodes(store, wf.name, opp.connection)
            for r in e.rules:
                r.route = _route(wf.name, r, opp, directory, routing)
                r.finding = _finding(r, findings.get((r.rule, opp.key)), mode.mode)
            out.append(e)
    finally:
        store.close()
    return opp, out


def _route(
    workflow: str,
    r: RuleExplanation,
    opp: Opportunity,
    directory: dict[str, OwnerEntry],
    routing: Routing | None,
) -> str | None:
    """Where a firing's task goes when not to the deal's owner (as `plan` routes it)."""
    if not r.fired or not any(a.kind == "task" for a in r.actions):
        return None
    built = list(r.actions)
    firing = Firing(workflow, r.rule, r.title, r.kind, opp, r.reasons, make_actions=lambda: built)
    return next(route_firings([firing], directory, routing)).route


def _finding(r: RuleExplanation, ep: Episode | None, mode: str) -> str | None:
    """What the write-back holds of this rule on this deal, and what the next apply does."""
    is_open = ep is not None and ep.state == "open"
    if mode != "live":
        return f"{mode}: nothing is written" if r.fired else None
    if ep is None or not is_open:
        return "new finding on the next apply" if r.fired else None
    since = f"open since {ep.opened_at.date().isoformat()}"
    task = "its task written" if ep.task_key else "no task yet"
    rep = f"; the rep {ep.left_to_rep.partition(':')[0]} the task" if ep.left_to_rep else ""
    if r.fired:
        return f"{since}, {task}{rep}"
    if r.undecided:  # as apply: unknown is not fixed
        return f"{since}, {task}{rep}: it stays open on the next apply (undecided, see why)"
    return f"{since}, {task}{rep}: it resolves on the next apply (no longer fires)"
