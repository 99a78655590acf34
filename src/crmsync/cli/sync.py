"""`crmsync sync` and `crmsync status`: pulling the CRMs into the store, and what it holds."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from crmsync.cli.format import describe_cursor, print_failures, print_summaries, progress_line
from crmsync.cli.options import CONFIG_OPTION


@click.command()
@CONFIG_OPTION
@click.option(
    "--connection",
    "connections",
    multiple=True,
    metavar="NAME",
    help="Sync only this connection (repeatable). Default: all of them.",
)
@click.option("--full", is_flag=True, help="Re-read everything and restart the cursor.")
@click.option(
    "--reconcile",
    is_flag=True,
    help="Re-read everything to catch hard deletes and formula fields; the cursor "
    "stays where it is.",
)
def sync(config_path: Path, connections: tuple[str, ...], full: bool, reconcile: bool) -> None:
    """Pull opportunities and deals from the CRMs into crmsync's store.

    Incremental by default: only what changed since the last sync. A connection that fails
    does not stop the others. Exit codes: 2 a configuration mistake, 3 a CRM refused (fix it,
    then run again), 4 stopped before spending the configured share of the daily API quota
    (resumes next run), 5 a CRM could not be reached (retry later), 6 the store could not be
    reached (retry later), 130 Ctrl-C. Several outcomes: 2 or 3 win over 5, 5 over 4.
    """
    from crmsync.app.runner import exit_code, run_syncs
    from crmsync.errors import InvalidInput

    if full and reconcile:
        raise InvalidInput(
            "--full and --reconcile cannot be used together: --full already re-reads "
            "everything (and restarts the cursor); --reconcile re-reads it keeping the cursor"
        )
    summaries = run_syncs(
        config_path, connections, full=full, reconcile=reconcile, progress=progress_line()
    )
    print_summaries(summaries)
    print_failures(summaries)
    code = exit_code(summaries)
    if code:
        sys.exit(code)


@click.command()
@CONFIG_OPTION
def status(config_path: Path) -> None:
    """Show each connection's cursor, last sync and record counts, the first records set aside
    with their reasons, and each workflow's last scheduled run."""
    from crmsync.app.runner import connection_status

    connections, workflows, note = connection_status(config_path)
    if note:
        click.echo(note, err=True)
    for row in connections:
        click.echo(
            f"{row['connection']}: records={row['records']} deleted={row['deleted']} "
            f"set_aside={row['set_aside']}"
        )
        click.echo(f"  cursor: {describe_cursor(row['cursor'], row['cursor_ids'])}")
        for native_id, reason in row["set_aside_records"]:
            click.echo(f"  set aside {_printable(native_id)}: {_printable(reason)}")
        hidden = row["set_aside"] - len(row["set_aside_records"])
        if hidden > 0:
            click.echo(f"  ... and {hidden} more set aside")
        last = row["last_run"]
        if last:
            click.echo(
                f"  last sync: {last['kind']} {last['status']} at {_when(last['finished_at'])} "
                f"fetched={last['fetched']} api_calls={last['api_calls']}"
                + (f" error={last['error']}" if last.get("error") else "")
            )
        else:
            click.echo("  never synced")
    for run in workflows:
        click.echo(
            f"workflow {run['workflow']}: last scheduled run {run['status']} "
            f"at {_when(run['finished_at'])}"
        )
    for line in _mode_lines(config_path):
        click.echo(line)


def _when(moment: Any) -> str:
    """A stored moment as people read it: `2026-12-04 21:05:45 UTC` (the store keeps UTC)."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(moment)


def _mode_lines(config_path: Path) -> list[str]:
    """Each workflow's effective mode and where it comes from (as `crmsync workflows` shows
    it); one line saying why when the workflow files do not load."""
    from crmsync.app.modes import effective_mode
    from crmsync.app.plan import workflows_for
    from crmsync.config import load_config
    from crmsync.errors import InvalidInput

    config = load_config(config_path)
    try:
        loaded, _ = workflows_for(config)
    except InvalidInput:
        return ["modes of the workflows: unknown, their files do not load (crmsync validate)"]
    lines = ["modes of the workflows (crmsync workflows shows more):"] if loaded else []
    for wf in sorted(loaded, key=lambda w: w.name):
        modes = [(c.name, effective_mode(config, wf, c.name)) for c in config.connections]
        on = [(name, m) for name, m in modes if m.mode != "off"]
        shown = {str(m) for _, m in on}
        where = ", ".join(name for name, _ in on)
        if not on:
            lines.append(f"  {wf.name}: off (no configured connection is in its scope)")
        elif len(shown) == 1:
            lines.append(f"  {wf.name}: {shown.pop()} (on {where})")
        else:
            lines.append(f"  {wf.name}: " + "; ".join(f"{name} {m}" for name, m in on))
    return lines


def _printable(text: str) -> str:
    """One line for the terminal: control and other unprintable characters as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
