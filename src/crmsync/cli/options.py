"""Options that several commands share."""

from __future__ import annotations

from pathlib import Path

import click

CONFIG_OPTION = click.option(
    "--config",
    "-c",
    "config_path",
    # not checked by click (its three-line usage error): loading says what is wrong, in one line
    type=click.Path(path_type=Path, readable=False),
    envvar="CRMSYNC_CONFIG",
    default="config/crmsync.yaml",
    show_default=True,
    help="Service configuration file (or set CRMSYNC_CONFIG).",
)
WORKFLOW_OPTION = click.option(
    "--workflow",
    "-w",
    "workflows",
    multiple=True,
    metavar="NAME",
    help="Only this workflow (repeatable); default: every workflow file.",
)
CONNECTION_OPTION = click.option(
    "--connection",
    "connections",
    multiple=True,
    metavar="NAME",
    help="Only this connection (repeatable); default: every connection.",
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
