"""Running workflows for a configured service: which files, which connections, which store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from crmsync.actions.routing import route_firings
from crmsync.app.modes import Mode, effective_mode
from crmsync.config import Config, load_config, load_mapping
from crmsync.config.schema import Routing
from crmsync.errors import InvalidInput
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.model.owners import OwnerEntry
from crmsync.store import Store
from crmsync.store.owners import load_owners
from crmsync.workflows.load import LoadedWorkflow, load_workflows
from crmsync.workflows.plan import OnFiring, PlanSummary, evaluate


def mappings(config: Config) -> dict[str, CrmMapping]:
    """Each connection's mapping, by connection name."""
    return {c.name: load_mapping(c.mapping) for c in config.connections}


def workflows_for(
    config: Config, paths: Sequence[Path] = (), names: Sequence[str] = ()
) -> tuple[list[LoadedWorkflow], dict[str, CrmMapping]]:
    """The config's workflow files (or `paths`), checked against its connections."""
    maps = mappings(config)
    loaded = load_workflows(list(paths) or [config.workflow_dir()], connections=maps)
    if names:
        known = {w.name for w in loaded}
        for name in names:
            if name not in known:
                raise InvalidInput(
                    f"no workflow named '{name}' (known: {', '.join(sorted(known)) or 'none'})"
                )
        loaded = [w for w in loaded if w.name in names]
    return loaded, maps


def plan(
    config_path: Path,
    *,
    workflows: Sequence[str] = (),
    connections: Sequence[str] = (),
    paths: Sequence[Path] = (),
    now: datetime | None = None,
    on_firing: OnFiring | None = None,
    config: Config | None = None,
    modes: dict[tuple[str, str], Mode] | None = None,
) -> list[PlanSummary]:
    """Evaluate each (workflow, connection) pair over the store; nothing is written. `modes`,
    when given, is filled with each pair's effective mode (crmsync.app.modes)."""
    config = config or load_config(config_path)
    loaded, maps = workflows_for(config, paths, workflows)
    chosen = [config.connection(n).name for n in connections] if connections else list(maps)
    now = now or datetime.now(UTC)
    summaries = []
    store = Store.open(config.store.url, create=False)
    try:
        for wf in loaded:
            for name in chosen:
                scoped = wf.workflow.scope.connections
                if scoped is not None and name not in scoped:
                    continue
                if modes is not None:
                    modes[wf.name, name] = effective_mode(config, wf, name)
                hook = _routed(on_firing, load_owners(store, name), config.connection(name).routing)
                summaries.append(evaluate(wf, store, name, now, mapping=maps[name], on_firing=hook))
    finally:
        store.close()
    return summaries


def _routed(
    on_firing: OnFiring | None, directory: dict[str, OwnerEntry], routing: Routing | None
) -> OnFiring | None:
    """`on_firing`, shown each firing as routing leaves it: the owner its task goes to, and why."""
    if on_firing is None:
        return None
    show = on_firing
    return lambda f: show(next(route_firings([f], directory, routing)))


def engine_layouts(
    config_path: Path, *, workflows: Sequence[str] = (), connections: Sequence[str] = ()
) -> list[tuple[str, str, list[str]]]:
    """(workflow, connection, lines): which engine each rule (and the scope) runs on, and why
    a rule runs deal by deal; per connection, because the columnar engine needs the store's
    history summaries to be current (else the whole workflow runs deal by deal)."""
    from crmsync.workflows.columnar.run import plan_layout
    from crmsync.workflows.plan import columnar_ready
    from crmsync.workflows.readers import summarizer_for

    config = load_config(config_path)
    loaded, maps = workflows_for(config, (), workflows)
    chosen = [config.connection(n).name for n in connections] if connections else list(maps)
    out = []
    with Store.open(config.store.url, create=False) as store:
        for wf in loaded:
            for name in chosen:
                scoped = wf.workflow.scope.connections
                if scoped is not None and name not in scoped:
                    continue
                version = summarizer_for(maps[name]).version
                if not columnar_ready(store, name, version):
                    lines = [
                        "all rules: per-deal (no history summaries kept yet: the next sync "
                        "makes them)"
                    ]
                else:
                    lines = plan_layout(wf, None).describe()
                out.append((wf.name, name, lines))
    return out
