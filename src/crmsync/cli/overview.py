"""`crmsync workflows`: each workflow's effective mode and where it comes from, its version,
schedule and next run, last run, and per connection its findings, tasks and parked actions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from crmsync.cli.format import printable
from crmsync.cli.options import CONFIG_OPTION, FORMAT_OPTION
from crmsync.files.problems import Problems


@click.command(name="workflows")
@CONFIG_OPTION
@click.option(
    "--workflow", "-w", "names", multiple=True, metavar="NAME", help="Only this workflow."
)
@FORMAT_OPTION
def workflows_command(config_path: Path, names: tuple[str, ...], fmt: str) -> None:
    """What is running: per workflow its mode on each connection (and whether the file or the
    config decided it), version, schedule and next run, last run, findings open and resolved,
    tasks created, open and completed, and actions parked. Reads only."""
    from crmsync.app.overview import workflow_overview
    from crmsync.app.runner import open_existing
    from crmsync.config import load_config

    config = load_config(config_path)
    store, note = open_existing(config)  # the modes and schedules show before any sync
    broken: list[str] = []  # files that do not load: the others are still shown, then exit 2
    with store:
        found = workflow_overview(config, store, names=names, problems=broken)
    if note:
        click.echo(note, err=True)
    if fmt == "json":
        for wf in found:
            click.echo(json.dumps(wf.as_json()))
    else:
        if not found and not broken:
            click.echo(f"no workflows in {config.workflow_dir()}")
        for wf in found:
            for line in overview_lines(wf):
                click.echo(printable(line))
    if broken:
        raise Problems(broken)


def overview_lines(wf: Any) -> list[str]:
    """One workflow as the table shows it."""
    lines = [f"{wf.name}  version {wf.version}  {wf.file}"]
    if wf.schedule:
        when = f"{wf.next_run:%Y-%m-%d %H:%M %Z}" if wf.next_run else "never"
        lines.append(f"  schedule: {wf.schedule}; next run {when}")
    else:
        lines.append("  schedule: none (runs only with crmsync apply or cycle)")
    run = wf.last_run
    if run:
        lines.append(f"  last run: {run['status']} at {run['finished_at']:%Y-%m-%d %H:%M:%S %Z}")
    else:
        lines.append("  last run: never (by the service)")
    if not wf.connections:
        lines.append("  no connection in its scope")
    width = max((len(c.connection) for c in wf.connections), default=0)
    for c in wf.connections:
        n = c.counts
        lines.append(
            f"  {c.connection + ':':<{width + 1}} {c.mode}, from {c.mode_source}; "
            f"findings {n.findings_open} open, {n.findings_resolved} resolved; "
            f"tasks {n.tasks_created} created, {n.tasks_open} open, {n.tasks_completed} "
            f"completed; actions {n.actions_pending} pending, {n.actions_parked} parked"
        )
    return lines
