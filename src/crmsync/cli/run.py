"""`crmsync run`: the background service."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crmsync.cli.options import CONFIG_OPTION


@click.command()
@CONFIG_OPTION
def run(config_path: Path) -> None:
    """Run the background service: scheduled syncs and workflows, until SIGTERM or Ctrl-C.

    Serves /healthz, /readyz and /metrics (config `service.http`). Several workers may share
    one PostgreSQL database: they take the jobs from a shared queue, any number of them, and
    take over the jobs of one that dies (`service.scheduler: lease` instead keeps one active
    worker and the others on standby). With SQLite one worker runs everything. Exits 0 when
    stopped; 75 when other workers took it for dead (start it again).
    """
    from crmsync.service.worker import run_service

    sys.exit(run_service(config_path))
