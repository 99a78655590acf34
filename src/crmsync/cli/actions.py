"""`crmsync apply`, `crmsync cycle` and `crmsync audit`: writing back to the CRMs, one full
round, and what was written and why."""

from __future__ import annotations

import difflib
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import click

from crmsync.cli.format import print_apply_report, print_failures, print_summaries
from crmsync.cli.options import (
    CONFIG_OPTION,
    CONNECTION_OPTION,
    DRY_RUN_OPTION,
    FORMAT_OPTION,
    WORKFLOW_OPTION,
)
from crmsync.errors import InvalidInput


@click.command(name="apply")
@CONFIG_OPTION
@WORKFLOW_OPTION
@CONNECTION_OPTION
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
    with Store.open(config.store.url, create=False) as store:
        report = apply(config, store, workflows=workflows, connections=connections, dry_run=dry_run)
    print_apply_report(report, fmt)


@click.command()
@CONFIG_OPTION
@WORKFLOW_OPTION
@CONNECTION_OPTION
@DRY_RUN_OPTION
@FORMAT_OPTION
def cycle(
    config_path: Path,
    workflows: tuple[str, ...],
    connections: tuple[str, ...],
    dry_run: bool,
    fmt: str,
) -> None:
    """Sync every connection (or those named), then plan and apply the workflows: one round.

    Write-back runs only for the connections whose sync went well; the others are reported
    (one line each) and the exit code is `crmsync sync`'s for them.
    """
    from crmsync.app.apply import apply
    from crmsync.app.runner import exit_code, run_syncs
    from crmsync.config import load_config
    from crmsync.store import Store

    config = load_config(config_path)
    summaries = run_syncs(config_path, connections, config=config)
    if fmt == "table":
        print_summaries(summaries)
    print_failures(summaries)
    synced = [s.connection for s in summaries if s.status == "ok"]
    if synced:
        # every connection asked for synced: no filter, so the report is the same as before
        chosen = () if len(synced) == len(summaries) and not connections else synced
        with Store.open(config.store.url) as store:
            report = apply(config, store, workflows=workflows, connections=chosen, dry_run=dry_run)
        print_apply_report(report, fmt)
    code = exit_code(summaries)
    if code:
        sys.exit(code)


@click.command()
@CONFIG_OPTION
@click.option("--workflow", "-w", "workflow", metavar="NAME", help="Only this workflow.")
@click.option(
    "--rule",
    help="Only this rule (with --workflow: of that workflow; rule ids repeat across "
    "workflows); `flags` for the merged flag writes, `digest` for digest tasks.",
)
@click.option("--opportunity", help="A CRM record id (or crmsync key, connection:id).")
@click.option("--since", help="From this date (YYYY-MM-DD) or moment (ISO 8601, UTC if bare).")
@click.option(
    "--summary", is_flag=True, help="Counts per workflow and per rule instead of the entries."
)
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table for people; csv for a spreadsheet; json lines for scripts.",
)
def audit(
    config_path: Path,
    workflow: str | None,
    rule: str | None,
    opportunity: str | None,
    since: str | None,
    summary: bool,
    limit: int,
    fmt: str,
) -> None:
    """What crmsync did in the CRM and why: every action with its states, times and the CRM's
    answer (planned, sent, confirmed, failed, parked, skipped, resolved), or with --summary
    the counts per workflow and rule."""
    from crmsync.cli.audit_output import print_audit, print_audit_summary
    from crmsync.config import load_config
    from crmsync.store import Store
    from crmsync.store.audit_log import audit_summary, audit_workflows
    from crmsync.store.outbox import audit_trail

    config = load_config(config_path)
    moment = parse_since(since)
    with Store.open(config.store.url, create=False) as store:
        if workflow is not None:
            _check_workflow(config, workflow, audit_workflows(store))
        if summary:
            found = audit_summary(
                store, workflow=workflow, rule=rule, opportunity=opportunity, since=moment
            )
            print_audit_summary(found, fmt)
            return
        rows = audit_trail(
            store, workflow=workflow, rule=rule, opportunity=opportunity, since=moment, limit=limit
        )
    print_audit(rows, fmt)


def _check_workflow(config: Any, name: str, audited: list[str]) -> None:
    """`--workflow` names a workflow the audit or the files know (a typo matched nothing and
    said only "no audit entries match")."""
    from crmsync.app.plan import workflows_for

    if name in audited:
        return
    try:
        files = [wf.name for wf in workflows_for(config)[0]]
    except InvalidInput:  # a broken file: the audit's names still help
        files = []
    if name in files:
        return
    known = sorted({*audited, *files})
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise InvalidInput(
        f"--workflow {name!r}: no such workflow in the audit or the workflow files "
        f"({hint}known: {', '.join(known) or 'none'})"
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
