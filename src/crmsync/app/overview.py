"""`crmsync workflows`: what is running, at a glance. Per workflow its version (content hash
and file), schedule and next run, last scheduled run; per connection its effective mode and
where it comes from (crmsync.app.modes), findings, tasks and parked actions (read from the
store, crmsync.store.overview). Reads only."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsync.app.modes import check_modes, effective_mode
from crmsync.app.plan import mappings, workflows_for
from crmsync.config import Config
from crmsync.schedule import cron_trigger
from crmsync.store import Store
from crmsync.store.overview import WorkflowCounts, workflow_counts
from crmsync.workflows.load import check_workflows

__all__ = ["ConnectionOverview", "WorkflowOverview", "shown_path", "workflow_overview"]


@dataclass
class ConnectionOverview:
    """One workflow on one connection."""

    connection: str
    mode: str
    mode_source: str
    counts: WorkflowCounts = field(default_factory=WorkflowCounts)


@dataclass
class WorkflowOverview:
    """One workflow: its version, schedule, last run and each connection's part."""

    name: str
    file: str
    version: str  # the first 12 hex digits of the file's SHA-256 (as job.finished logs it)
    schedule: str | None  # `0 7 * * 1-5 America/New_York`
    next_run: datetime | None  # in the schedule's time zone
    last_run: dict[str, Any] | None  # status, started_at, finished_at
    connections: list[ConnectionOverview] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The overview as JSON can hold it (times in ISO 8601)."""
        data = asdict(self)
        data["next_run"] = self.next_run.isoformat() if self.next_run else None
        if self.last_run:
            data["last_run"] = {
                k: v.isoformat() if isinstance(v, datetime) else v for k, v in self.last_run.items()
            }
        return data


def workflow_overview(
    config: Config,
    store: Store,
    *,
    names: tuple[str, ...] = (),
    now: datetime | None = None,
    problems: list[str] | None = None,
) -> list[WorkflowOverview]:
    """Every workflow of the config's folder (or those in `names`), by name. With `problems`
    (and no `names`), a file that does not load is added there and the others are shown: one
    broken file must not hide what is running."""
    now = now or datetime.now(UTC)
    if problems is not None and not names:
        loaded, failed = check_workflows([config.workflow_dir()], connections=mappings(config))
        problems += failed
    else:
        loaded, _ = workflows_for(config, (), names)
    if not names and not problems:  # with a file broken, its name in `modes` is unknowable
        check_modes(config, {wf.name for wf in loaded})
    counts = workflow_counts(store)
    runs = {r["job"]: r for r in store.job_runs()}
    out = []
    for wf in sorted(loaded, key=lambda w: w.name):
        schedule = wf.workflow.schedule
        next_run = None
        if schedule is not None:
            next_run = cron_trigger(schedule.cron, schedule.timezone).get_next_fire_time(None, now)
        run = runs.get(f"workflow:{wf.name}")
        item = WorkflowOverview(
            wf.name,
            shown_path(wf.path),
            hashlib.sha256(wf.path.read_bytes()).hexdigest()[:12],
            f"{schedule.cron} {schedule.timezone}" if schedule else None,
            next_run,
            {k: run[k] for k in ("status", "started_at", "finished_at")} if run else None,
        )
        for conn in config.connections:
            mode = effective_mode(config, wf, conn.name)
            if mode.mode == "off":
                continue
            found = counts.get((wf.name, conn.name), WorkflowCounts())
            item.connections.append(ConnectionOverview(conn.name, mode.mode, mode.source, found))
        out.append(item)
    return out


def shown_path(path: Path) -> str:
    """A file as people read it: relative to the working folder when inside it, with no
    `config/../` detours; absolute otherwise."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)
