"""A full sync's two halves measured apart, and what handing pages between processes costs.

`bench/sync.py` times the sync whole: its fetch thread (HTTP, the client, normalizing) and its
store writes share one GIL. This script asks what a split over two processes could give, per
CRM, against a fresh sandbox (in its own process, as a CRM would be):

* pull: every page of the full pull (records, then history), normalized, kept in memory;
* handing over: those pages pickled and unpickled, as a pipe to a writer process would carry
  them (seconds and megabytes);
* store: the same pages written to a fresh SQLite store as the sync writes them (the pages,
  the summaries), commits every 20 pages.

A writer process could at best overlap the pull with (handing over + store); the slower of the
two halves is the floor of such a design on this machine, before the sandbox's own share of the
cores. Wall and CPU seconds of this process; rough on a shared machine.

    .venv/bin/python bench/sync_parts.py --crm hs -n 100000
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sandbox_process import sandbox_process
from sync import connector

from crmsync.app import sync as sync_module
from crmsync.logs import configure
from crmsync.store import Store
from crmsync.store.history import StageSummarizer


class Clock:
    """Wall and CPU seconds since made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __str__(self) -> str:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return f"seconds={wall:6.2f}  cpu={cpu:6.2f}"


def measure(crm: str, n: int) -> None:
    """The three parts for one CRM, printed a line each."""
    from crmsync.app.sync import HISTORY_OBJECT, SyncSummary

    with sandbox_process(n) as (info, _pid), tempfile.TemporaryDirectory() as tmp:
        conn = connector(info, crm)
        conn.load_cache(None)
        conn.check()
        clock = Clock()
        pages = list(conn.pull(None, started_at=datetime.now(UTC)))
        history = list(conn.pull_history(None))
        records = sum(len(p.opportunities) for p in pages)
        print(
            f"  {crm} pull          {clock}  pages={len(pages) + len(history)}  records={records}"
        )
        clock = Clock()
        blob = pickle.dumps((pages, history), protocol=pickle.HIGHEST_PROTOCOL)
        print(f"  {crm} pickle        {clock}  mb={len(blob) / 1e6:.0f}")
        clock = Clock()
        pages, history = pickle.loads(blob)
        print(f"  {crm} unpickle      {clock}")
        del blob
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        summarizer = StageSummarizer(conn.mapping.stages)
        in_step = None if history else summarizer  # as the sync: HubSpot summarizes per page
        clock = Clock()
        for obj, part, step in (
            (conn.object_name, pages, in_step),
            (HISTORY_OBJECT, history, None),
        ):
            with store.grouped_writes():
                for i, page in enumerate(part):
                    summary = SyncSummary(conn.connection, obj, "full")
                    sync_module._store_page(store, conn.connection, obj, page, summary, step)
                    if i % 20 == 19:
                        store.commit_pending()
        store.refresh_summaries(conn.connection, summarizer)
        print(f"  {crm} store         {clock}")
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", "-n", type=int, default=100_000)
    parser.add_argument("--crm", nargs="+", choices=("sf", "hs"), default=["hs", "sf"])
    args = parser.parse_args()
    configure("error")
    print(f"{args.opportunities} opportunities per CRM, store sqlite", flush=True)
    for crm in args.crm:
        measure(crm, args.opportunities)


if __name__ == "__main__":
    main()
