"""`crmsync demo`: a sandbox of both CRMs, synced into SQLite, end to end, in one command."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crmsync.cli.format import (
    print_apply_report,
    print_plan_summary,
    print_summaries,
    progress_line,
)
from crmsync.cli.needs_sandbox import require_sandbox
from crmsync.errors import InvalidInput

if TYPE_CHECKING:
    from crmsync.app.sync import Progress

DEMO_PORTS = (44301, 44302)


@click.command()
@click.option(
    "--opportunities",
    "-n",
    default=10_000,
    show_default=True,
    type=click.IntRange(0),
    help="Opportunities (and deals) in the sandbox.",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed for the sandbox data.")
@click.option(
    "--config",
    "-c",
    "config_path",
    default="config/sandbox.yaml",
    show_default=True,
    type=click.Path(path_type=Path, readable=False),
    help="The sandbox configuration (run from the crmsync folder).",
)
def demo(opportunities: int, seed: int, config_path: Path) -> None:
    """Start a sandbox Salesforce and HubSpot and run crmsync's main job against them.

    The store is left in var/ so that `crmsync status -c config/sandbox.yaml` and later
    commands can look at it.
    """
    from crmsync.logs import configure

    parent = click.get_current_context().parent
    if parent is not None and parent.get_parameter_source("log_level") in (
        click.core.ParameterSource.DEFAULT,
        None,
    ):
        configure("warning")  # the demo prints its own summary; events only when asked for

    run_demo(
        config_path,
        opportunities=opportunities,
        seed=seed,
        echo=click.echo,
        progress=progress_line(),
    )


def free(port: int) -> bool:
    """Whether nothing listens on the local port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_demo(
    config_path: Path,
    *,
    opportunities: int,
    seed: int,
    echo: Callable[[str], None],
    progress: Progress | None = None,
    inspect: Callable[[Any, Any], None] | None = None,
) -> None:
    """Start the sandbox, point config/sandbox.yaml at it, sync both CRMs and summarize.

    `inspect(sandbox, config)` is called before the sandbox stops (tests look at what reps got).
    """
    from crmsync.app.apply import apply
    from crmsync.app.plan import plan
    from crmsync.app.runner import raise_first_failure, run_syncs
    from crmsync.config import load_config

    require_sandbox("crmsync demo")
    from crmsync.sandbox import Sandbox, SandboxConfig
    from crmsync.store import Store

    if not config_path.is_file():
        raise InvalidInput(
            f"{config_path}: not found; run `crmsync demo` from the crmsync "
            "folder, or pass --config"
        )
    state = (config_path.parent / "../var/sandbox").resolve()
    state.mkdir(parents=True, exist_ok=True)
    sf_port, hs_port = (p if free(p) else 0 for p in DEMO_PORTS)
    echo(
        f"Starting the CRM sandbox with {opportunities} opportunities in Salesforce and "
        f"{opportunities} deals in HubSpot..."
    )
    sb = Sandbox(
        SandboxConfig(
            opportunities=opportunities,
            seed=seed,
            state_dir=state,
            salesforce_port=sf_port,
            hubspot_port=hs_port,
        )
    ).start()
    try:
        env = {
            "CRMSYNC_SANDBOX_SF_URL": sb.salesforce.url,
            "CRMSYNC_SANDBOX_HS_URL": sb.hubspot.url,
            "CRMSYNC_SANDBOX_CA": str(sb.ca_path),
            "CRMSYNC_SANDBOX_DIR": str(state),
        }
        config = load_config(config_path, env={**os.environ, **env})
        fresh_store(config.store.sqlite_path, state)
        echo(f"Syncing into {config.store.url} ...")
        summaries = run_syncs(config_path, config=config, progress=progress)
        print_summaries(summaries)
        raise_first_failure(summaries)
        echo("")
        echo("What the workflows find:")
        print_plan_summary(plan(config_path, config=config))
        echo("")
        echo("Writing flags and follow-up tasks back (the sandbox runs the workflows live):")
        with Store.open(config.store.url) as store:
            print_apply_report(apply(config, store), "table")
        echo("")
        echo("A second cycle right away creates nothing twice:")
        raise_first_failure(run_syncs(config_path, config=config))
        with Store.open(config.store.url) as store:
            print_apply_report(apply(config, store), "table")
        echo("")
        for line in rep_view(sb, 3):
            echo(line)
        if inspect is not None:
            inspect(sb, config)
        echo("")
        echo(f"Done. Look around with: crmsync status -c {config_path}")
        echo(f"See every finding and why: crmsync plan -c {config_path}")
        echo(f"See what was done in the CRMs: crmsync audit -c {config_path}")
        echo(f"The pipeline review for managers: crmsync report -c {config_path}")
    finally:
        sb.stop()


def fresh_store(path: Path | None, state: Path) -> None:
    """The sandbox's data is generated anew each run, so its store starts empty too."""
    if path is not None and path.resolve().parent == state:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def rep_view(sb: Any, n: int) -> list[str]:
    """A few of crmsync's tasks as the owner sees them in Salesforce."""
    org = sb.salesforce.org
    tasks = [t for t in org.tables["Task"].values() if t.get("CRMSync_Key__c")]
    digests = [t for t in tasks if str(t["CRMSync_Key__c"]).startswith("digest-")]
    chosen = [t for t in tasks if t not in digests][: n - 1] + digests[:1]
    lines = [f"{len(tasks)} tasks in Salesforce now carry a crmsync key. A few, as reps see them:"]
    for t in chosen:
        owner = org.tables["User"].get(t.get("OwnerId"), {}).get("Name", t.get("OwnerId"))
        deal = org.tables["Opportunity"].get(t.get("WhatId"), {}).get("Name", "-")
        lines += [
            "",
            f"  To: {owner}   Related to: {deal}   Due: {t.get('ActivityDate')}   "
            f"Priority: {t.get('Priority')}",
            f"  {t.get('Subject')}",
            *(f"    {line}" for line in str(t.get("Description") or "").splitlines()[:6]),
        ]
    return lines
