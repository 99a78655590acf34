"""`crmsync apply`, `crmsync cycle` and `crmsync audit`: writing back to the CRMs, one full
round, and what was written and why."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path

import click

from crmsync.cli.format import plain, print_apply_report, print_failures, print_summaries
from crmsync.cli.options import CONFIG_OPTION, DRY_RUN_OPTION, FORMAT_OPTION, WORKFLOW_OPTION
from crmsync.errors import InvalidInput


@click.command(name="apply")
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


@click.command()
@CONFIG_OPTION
@WORKFLOW_OPTION
@DRY_RUN_OPTION
@FORMAT_OPTION
def cycle(config_path: Path, workflows: tuple[str, ...], dry_run: bool, fmt: str) -> None:
    """Sync every connection, then plan and apply the workflows: one full round.

    Write-back runs only for the connections whose sync went well; the others are reported
    (one line each) and the exit code is `crmsync sync`'s for them.
    """
    from crmsync.app.apply import apply
    from crmsync.app.runner import exit_code, run_syncs
    from crmsync.config import load_config
    from crmsync.store import Store

    config = load_config(config_path)
    summaries = run_syncs(config_path, config=config)
    if fmt == "table":
        print_summaries(summaries)
    print_failures(summaries)
    synced = [s.connection for s in summaries if s.status == "ok"]
    if synced:
        # every connection synced: no filter, so the report is the same as before
        chosen = () if len(synced) == len(summaries) else synced
        with Store.open(config.store.url) as store:
            report = apply(config, store, workflows=workflows, connections=chosen, dry_run=dry_run)
        print_apply_report(report, fmt)
    code = exit_code(summaries)
    if code:
        sys.exit(code)


@click.command()
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
            store, opportunity=opportunity, rule=rule, since=parse_since(since), limit=limit
        )
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps({k: plain(v) for k, v in row.items()}))
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


def parse_since(text: str | None) -> datetime | None:
    """`--since`: a date (midnight UTC) or an ISO 8601 moment (UTC when it names no zone)."""
    if not text:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--since {text!r}: use YYYY-MM-DD or an ISO 8601 moment") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
