"""The write-back commands: `apply`, `cycle` and `audit` (registered on the `crmsync` group)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import click

from crmsync.cli import CONFIG_OPTION, _print_summaries, main
from crmsync.errors import InvalidInput

WORKFLOW_OPTION = click.option(
    "--workflow",
    "-w",
    "workflows",
    multiple=True,
    help="Only this workflow (repeatable); default: every workflow file.",
)
DRY_RUN_OPTION = click.option(
    "--dry-run",
    is_flag=True,
    envvar="CRMSYNC_DRY_RUN",
    help="Plan and report, but record nothing and write nothing (or set CRMSYNC_DRY_RUN=1).",
)
FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)


@main.command(name="apply")
@CONFIG_OPTION
@WORKFLOW_OPTION
@click.option("--connection", "connections", multiple=True, help="Only this connection.")
@DRY_RUN_OPTION
@FORMAT_OPTION
def apply_command(
    config_path: Path,
    workflows: tuple[str, ...],
    connections: tuple[str, ...],
    dry_run: bool,
    fmt: str,
) -> None:
    """Carry out the current plan: set flags, create and close follow-up tasks in the CRM.

    Only workflows in live mode write; shadow workflows are planned and reported. Each action
    is recorded before it is sent, so a stopped run picks up where it left off, and running it
    twice creates nothing twice. Run `crmsync sync` first (or use `crmsync cycle`).
    """
    from crmsync.app.apply import apply
    from crmsync.config import load_config
    from crmsync.store import Store

    config = load_config(config_path)
    with Store.open(config.store.url) as store:
        report = apply(config, store, workflows=workflows, connections=connections, dry_run=dry_run)
    print_apply_report(report, fmt)


@main.command()
@CONFIG_OPTION
@WORKFLOW_OPTION
@DRY_RUN_OPTION
@FORMAT_OPTION
def cycle(config_path: Path, workflows: tuple[str, ...], dry_run: bool, fmt: str) -> None:
    """Sync every connection, then plan and apply the workflows: one full round."""
    from crmsync.app.apply import apply
    from crmsync.app.runner import run_syncs
    from crmsync.config import load_config
    from crmsync.store import Store

    config = load_config(config_path)
    summaries = run_syncs(config_path, config=config)
    if fmt == "table":
        _print_summaries(summaries)
    with Store.open(config.store.url) as store:
        report = apply(config, store, workflows=workflows, dry_run=dry_run)
    print_apply_report(report, fmt)


@main.command()
@CONFIG_OPTION
@click.option("--opportunity", help="A CRM record id (or crmsync key, connection:id).")
@click.option("--rule", help="A rule id.")
@click.option("--since", help="From this date (YYYY-MM-DD) or moment (ISO 8601, UTC if bare).")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1))
@FORMAT_OPTION
def audit(
    config_path: Path,
    opportunity: str | None,
    rule: str | None,
    since: str | None,
    limit: int,
    fmt: str,
) -> None:
    """What crmsync did in the CRM and why: every action with its states, times and the CRM's
    answer (planned, sent, confirmed, failed, parked, skipped, resolved)."""
    from crmsync.config import load_config
    from crmsync.store import Store
    from crmsync.store.outbox import audit_trail

    config = load_config(config_path)
    with Store.open(config.store.url) as store:
        rows = audit_trail(
            store, opportunity=opportunity, rule=rule, since=_since(since), limit=limit
        )
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps({k: _plain(v) for k, v in row.items()}))
        return
    if not rows:
        click.echo("no audit entries match")
        return
    for row in rows:
        detail = f"  {row['detail']}" if row["detail"] else ""
        click.echo(
            f"{row['at']:%Y-%m-%d %H:%M:%S}  {row['state']:<9} {row['kind']:<13} "
            f"{row['opp_key']}  {row['workflow']}/{row['rule'] or '-'}{detail}"
        )


def print_apply_report(report: Any, fmt: str) -> None:
    """Per workflow what was planned, per connection what was sent, and the totals."""
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), default=_plain))
        return
    for w in report.workflows:
        planned = ", ".join(f"{k}={v}" for k, v in sorted(w.planned.items())) or "nothing new"
        click.echo(
            f"{w.workflow} on {w.connection} ({w.mode}): firings={w.firings} opened={w.opened} "
            f"reminded={w.reminded} resolved={w.resolved} digested={w.digested}; "
            f"planned: {planned}"
        )
    for s in report.sends:
        click.echo(
            f"{s.connection}: created={s.created} updated={s.updated} resolved={s.completed} "
            f"flagged={s.flagged} parked={s.parked} skipped={s.skipped} left={s.left} "
            f"api_calls={s.api_calls}" + (f"  stopped: {s.stopped}" if s.stopped else "")
        )
    click.echo(
        f"total: planned={report.planned()} created={report.total('created')} "
        f"updated={report.total('updated') + report.total('flagged')} "
        f"resolved={report.total('completed')} parked={report.total('parked')} "
        f"api_calls={report.total('api_calls')}"
    )


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--since {text!r}: use YYYY-MM-DD or an ISO 8601 moment") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value
