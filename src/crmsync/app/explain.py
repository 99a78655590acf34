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

from crmsync.app.plan import workflows_for
from crmsync.config import Config, load_config
from crmsync.errors import InvalidInput
from crmsync.model import Opportunity
from crmsync.model.text import cut
from crmsync.store import Store
from crmsync.workflows.explain import Explanation, explain
from crmsync.workflows.plan import needs_durations
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
    store = Store.open(config.store.url)
    try:
        opp = find_opportunity(store, ref, chosen)
        mapping = maps.get(opp.connection)
        canonical_of = summarizer_for(mapping).canonical_of
        history = store.history(opp.key)
        durations = None
        if any(needs_durations(wf.workflow.rules) for wf in loaded):
            durations = stage_durations(store, opp.connection, canonical_of)
        out = []
        for wf in loaded:
            out.append(
                explain(wf, opp, history, now, canonical_of=canonical_of, durations=durations)
            )
    finally:
        store.close()
    return opp, out
