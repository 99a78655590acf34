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
    one database: one runs the jobs, the others stand by and take over if it stops.
    """
    from crmsync.service.worker import run_service

    sys.exit(run_service(config_path))
