"""Running syncs for the configured connections: the glue between config, store and connectors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crmsync.app.factory import build_connector
from crmsync.app.sync import Progress, SyncSummary, sync
from crmsync.config import Config, load_config
from crmsync.store import Store


def open_store(config: Config) -> Store:
    return Store.open(config.store.url)


def run_syncs(
    config_path: Path,
    names: Sequence[str] = (),
    *,
    full: bool = False,
    reconcile: bool = False,
    progress: Progress | None = None,
    config: Config | None = None,
) -> list[SyncSummary]:
    """Sync the named connections (all when none), one after another, into the store."""
    config = config or load_config(config_path)
    chosen = [config.connection(n) for n in names] if names else list(config.connections)
    connectors = [build_connector(c) for c in chosen]  # every mapping checked before any sync
    store = open_store(config)
    try:
        summaries = []
        for connector in connectors:
            try:
                summaries.append(
                    sync(store, connector, full=full, reconcile=reconcile, progress=progress)
                )
            finally:
                connector.close()
        return summaries
    finally:
        store.close()


def connection_status(config_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Cursor, last run and record counts per configured connection; and the last scheduled
    run of each workflow the service has run (`crmsync run`)."""
    config = load_config(config_path)
    store = open_store(config)
    try:
        rows = []
        set_aside = store.set_aside_rows()
        for conn in config.connections:
            runs = store.runs(conn.name, limit=1)
            cursor = None
            for obj in ("Opportunity", "deals"):
                c = store.get_cursor(conn.name, obj)
                cursor = cursor or (c.value if c else None)
            rows.append(
                {
                    "connection": conn.name,
                    "records": store.count(conn.name),
                    "deleted": store.count(conn.name, include_deleted=True)
                    - store.count(conn.name),
                    "set_aside": sum(1 for name, _ in set_aside if name == conn.name),
                    "cursor": cursor,
                    "last_run": runs[0] if runs else None,
                }
            )
        workflows = [
            {**run, "workflow": run["job"].removeprefix("workflow:")}
            for run in store.job_runs()
            if run["job"].startswith("workflow:")
        ]
        return rows, workflows
    finally:
        store.close()
