"""Running syncs for the configured connections: the glue between config, store and connectors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crmsync.app.factory import build_connector
from crmsync.app.sync import Progress, SyncSummary, try_sync
from crmsync.config import Config, load_config
from crmsync.errors import combined_exit_code
from crmsync.store import Store, StoreMissing


def open_store(config: Config) -> Store:
    return Store.open(config.store.url)


def open_existing(config: Config) -> tuple[Store, str | None]:
    """The store for a command that shows what is there. Where its SQLite file does not exist,
    an empty store in memory and a note saying so: nothing synced yet, or a mistyped path (a
    file is made by the sync, never by a look)."""
    try:
        return Store.open(config.store.url, create=False), None
    except StoreMissing as e:
        return Store.open("sqlite://"), f"note: {e}; showing an empty store"


def run_syncs(
    config_path: Path,
    names: Sequence[str] = (),
    *,
    full: bool = False,
    reconcile: bool = False,
    progress: Progress | None = None,
    config: Config | None = None,
) -> list[SyncSummary]:
    """Sync the named connections (all when none), one after another, into the store.

    A connection whose CRM fails (down, refusing, out of quota) does not stop the others: its
    summary says `failed` or `stopped`, with the error in `failure`. The store's errors, and
    anything not crmsync's own (a crash, Ctrl-C), end the whole run; the run in progress is
    recorded as ended first.
    """
    config = config or load_config(config_path)
    chosen = [config.connection(n) for n in names] if names else list(config.connections)
    connectors = [build_connector(c) for c in chosen]  # every mapping checked before any sync
    store = open_store(config)
    try:
        summaries = []
        for connector in connectors:
            try:
                summaries.append(
                    try_sync(
                        store,
                        connector,
                        full=full,
                        reconcile=reconcile,
                        progress=progress,
                        snapshots=config.report,
                    )
                )
            finally:
                connector.close()
        return summaries
    finally:
        store.close()


def exit_code(summaries: Sequence[SyncSummary]) -> int:
    """The one exit code for how the syncs ended (crmsync.errors.combined_exit_code)."""
    return combined_exit_code(s.failure for s in summaries)


def raise_first_failure(summaries: Sequence[SyncSummary]) -> None:
    """Raise the first failure (not a quota stop) among the summaries, if any."""
    for s in summaries:
        if s.status == "failed" and s.failure is not None:
            raise s.failure


SET_ASIDE_SHOWN = 10  # set-aside records `crmsync status` lists per connection, with reasons


def connection_status(
    config_path: Path,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """Cursor, last run, record counts and the first set-aside records (id, reason) per
    configured connection; the last scheduled run of each workflow the service has run
    (`crmsync run`); and the note `open_existing` gives when the store file does not exist."""
    config = load_config(config_path)
    store, note = open_existing(config)
    try:
        rows = []
        set_aside = store.set_aside_rows()
        for conn in config.connections:
            runs = store.runs(conn.name, limit=1)
            cursor = None
            for obj in ("Opportunity", "deals"):
                cursor = cursor or store.get_cursor(conn.name, obj)
            rows.append(
                {
                    "connection": conn.name,
                    "records": store.count(conn.name),
                    "deleted": store.count(conn.name, include_deleted=True)
                    - store.count(conn.name),
                    "set_aside": sum(1 for name, _ in set_aside if name == conn.name),
                    "set_aside_records": [
                        (aside.native_id, aside.reason)
                        for name, aside in set_aside
                        if name == conn.name
                    ][:SET_ASIDE_SHOWN],
                    "cursor": cursor.value if cursor else None,
                    "cursor_ids": len(cursor.ids_at_value) if cursor else 0,
                    "last_run": runs[0] if runs else None,
                }
            )
        workflows = [
            {**run, "workflow": run["job"].removeprefix("workflow:")}
            for run in store.job_runs()
            if run["job"].startswith("workflow:")
        ]
        return rows, workflows, note
    finally:
        store.close()
