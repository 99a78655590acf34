"""One unit of work: sync one (connection, object) from its CRM into the store.

Pages flow one way, connector -> store, and each page is stored in one transaction together with
the cursor that covers it, so a sync stopped at any point (quota, fault, Ctrl-C) resumes where it
stopped and never skips a record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from crmsync.connectors.base import Connector, Page
from crmsync.errors import CrmsyncError, QuotaStop
from crmsync.store import Store
from crmsync.store.history import StageSummarizer

log = structlog.get_logger("crmsync.app.sync")

HISTORY_OBJECT = "OpportunityHistory"


@dataclass
class SyncSummary:
    """What one sync did, for the CLI's closing line, the run record and metrics."""

    connection: str
    object: str
    kind: str
    status: str = "ok"
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    set_aside: int = 0
    history_rows: int = 0
    api_calls: int = 0
    quota_used: int | None = None
    quota_limit: int | None = None
    seconds: float = 0.0
    error: str | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def upserted(self) -> int:
        return self.inserted + self.updated

    def counts(self) -> dict[str, int]:
        """The counts a finished sync logs (`sync.finished`, the service's `job.finished`)."""
        return {
            "fetched": self.fetched,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "set_aside": self.set_aside,
            "api_calls": self.api_calls,
        }


Progress = Callable[[SyncSummary], None]


def sync(
    store: Store,
    connector: Connector,
    *,
    full: bool = False,
    reconcile: bool = False,
    progress: Progress | None = None,
) -> SyncSummary:
    """Pull changes (or everything) from one connection into the store; never raises QuotaStop."""
    conn, obj = connector.connection, connector.object_name
    cursor = None if (full or reconcile) else store.get_cursor(conn, obj)
    kind = "reconcile" if reconcile else "incremental" if cursor is not None else "full"
    summary = SyncSummary(conn, obj, kind)
    started = time.monotonic()
    calls_before = connector.meter.calls
    run_id = store.start_run(conn, obj, kind, _now())
    summarizer = StageSummarizer(connector.mapping.stages)
    log.info("sync.started", connection=conn, object=obj, kind=kind)
    try:
        connector.check()
        seen: set[str] | None = set() if reconcile else None
        for page in connector.pull(cursor, started_at=_now()):
            if seen is not None:
                seen.update(o.native_id for o in page.opportunities)
                seen.update(s.native_id for s in page.set_aside)
                page.cursor = None  # a reconcile re-reads; it does not move the cursor
            _store_page(store, conn, obj, page, summary)
            _report(summary, connector, started, calls_before, progress)
        hcursor = None if full else store.get_cursor(conn, HISTORY_OBJECT)
        for page in connector.pull_history(hcursor):
            page.fetched = 0  # history rows are counted as history, not as records
            _store_page(store, conn, HISTORY_OBJECT, page, summary)
            _report(summary, connector, started, calls_before, progress)
        if seen is not None:
            gone = sorted(store.native_ids(conn) - seen)
            if gone:
                _store_page(store, conn, obj, Page(deleted_ids=gone), summary)
            summary.messages.append(f"reconcile: {len(gone)} deleted in the CRM since last seen")
        # the deals this sync touched, and any synced before summaries existed or with another
        # stage mapping, are summarized now (a sync stopped early leaves that to the next one)
        refreshed = store.refresh_summaries(conn, summarizer)
        if refreshed:
            log.info("summaries.refreshed", connection=conn, count=refreshed)
    except QuotaStop as e:
        summary.status, summary.error = "stopped", str(e)
        log.warning("sync.stopped", connection=conn, object=obj, reason=str(e))
    except CrmsyncError as e:
        summary.status, summary.error = "failed", str(e)
        log.error("sync.failed", connection=conn, object=obj, error=str(e))
        _finish(store, run_id, summary, connector, started, calls_before)
        raise
    _finish(store, run_id, summary, connector, started, calls_before)
    log.info(
        "sync.finished",
        connection=conn,
        object=obj,
        kind=kind,
        status=summary.status,
        **summary.counts(),
        seconds=round(summary.seconds, 2),
    )
    return summary


def _store_page(store: Store, conn: str, obj: str, page: Page, summary: SyncSummary) -> None:
    # without a summarizer: the summaries of the deals a page touches are dropped, and made
    # once each at the end of the sync (a record page and its history page touch the same deals)
    result = store.apply_batch(
        conn,
        obj,
        opportunities=page.opportunities,
        deleted_ids=page.deleted_ids,
        history=page.history,
        set_aside=page.set_aside,
        cursor=page.cursor,
        observed_at=_now(),
    )
    summary.fetched += page.fetched
    summary.inserted += result.inserted
    summary.updated += result.updated
    summary.unchanged += result.unchanged
    summary.deleted += result.deleted
    summary.history_rows += result.history_rows
    summary.set_aside += len(page.set_aside)


def _report(
    summary: SyncSummary,
    connector: Connector,
    started: float,
    calls_before: int,
    progress: Progress | None,
) -> None:
    summary.api_calls = connector.meter.calls - calls_before
    summary.seconds = time.monotonic() - started
    summary.quota_used = connector.meter.quota.used
    summary.quota_limit = connector.meter.quota.limit
    if progress is not None:
        progress(summary)


def _finish(
    store: Store,
    run_id: int,
    summary: SyncSummary,
    connector: Connector,
    started: float,
    calls_before: int,
) -> None:
    _report(summary, connector, started, calls_before, None)
    store.finish_run(
        run_id,
        status=summary.status,
        finished_at=_now(),
        fetched=summary.fetched,
        upserted=summary.upserted,
        deleted=summary.deleted,
        set_aside=summary.set_aside,
        api_calls=summary.api_calls,
        error=summary.error,
    )


def _now() -> datetime:
    return datetime.now(UTC)
