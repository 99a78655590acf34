"""`crmsync demo`: a sandbox of both CRMs, synced into SQLite, end to end, in one command."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from crmsync.config import load_config
from crmsync.errors import InvalidInput
from crmsync.runner import run_syncs
from crmsync.sync import Progress

DEMO_PORTS = (44301, 44302)


def _free(port: int) -> bool:
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
) -> None:
    """Start the sandbox, point config/sandbox.yaml at it, sync both CRMs and summarize."""
    from crmsync.cli import _print_summaries, print_plan_summary
    from crmsync.sandbox import Sandbox, SandboxConfig
    from crmsync.workflows.run import plan

    if not config_path.is_file():
        raise InvalidInput(
            f"{config_path}: not found; run `crmsync demo` from the crmsync "
            "folder, or pass --config"
        )
    state = (config_path.parent / "../var/sandbox").resolve()
    state.mkdir(parents=True, exist_ok=True)
    sf_port, hs_port = (p if _free(p) else 0 for p in DEMO_PORTS)
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
        echo(f"Syncing into {config.store.url} ...")
        summaries = run_syncs(config_path, config=config, progress=progress)
        _print_summaries(summaries)
        echo("")
        echo("What the workflows in shadow mode would do (nothing is written to the CRMs):")
        print_plan_summary(plan(config_path, config=config))
        echo("")
        echo(f"Done. Look around with: crmsync status -c {config_path}")
        echo(f"See every finding and why: crmsync plan -c {config_path}")
    finally:
        sb.stop()
