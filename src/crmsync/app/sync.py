"""One unit of work: sync one (connection, object) from its CRM into the store.

Pages flow one way, connector -> store, and each page is stored whole together with the cursor
that covers it, in the same transaction (a few pages share one), so a sync stopped at any point
(quota, fault, Ctrl-C) resumes where it stopped and never skips a record. Every run it starts
ends `ok`, `stopped` or `failed` in the store, whatever ends it (a CRM error, a crash, Ctrl-C),
unless the store itself is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from crmsync.app.prefetch import Prefetch
from crmsync.app.snapshots import take_snapshot
from crmsync.config.report import ReportSettings
from crmsync.connectors.base import Connector, Page
from crmsync.connectors.cache import CACHE_OBJECT
from crmsync.errors import CrmsyncError, QuotaStop, describe
from crmsync.model.records import Cursor
from crmsync.store import Store, StoreError
from crmsync.store.history import StageSummarizer
from crmsync.store.owners import save_owners

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
    # what ended the sync early: a QuotaStop (stopped) or another CrmsyncError (failed)
    failure: CrmsyncError | None = field(default=None, repr=False, compare=False)

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
    snapshots: ReportSettings | None = None,
) -> SyncSummary:
    """Pull changes (or everything) from one connection into the store; never raises QuotaStop.

    Other CRM errors are raised after the run is recorded as failed. With `snapshots` (the
    config's `report:` block) a sync that ends `ok` takes the day's pipeline snapshot.
    """
    summary = try_sync(
        store, connector, full=full, reconcile=reconcile, progress=progress, snapshots=snapshots
    )
    if summary.status == "failed" and summary.failure is not None:
        raise summary.failure
    return summary


def try_sync(
    store: Store,
    connector: Connector,
    *,
    full: bool = False,
    reconcile: bool = False,
    progress: Progress | None = None,
    snapshots: ReportSettings | None = None,
) -> SyncSummary:
    """`sync`, but a CRM's failure is returned in the summary (`failure`, status `failed`)
    rather than raised, so the caller can go on with the next connection.

    The store's own errors (StoreError) and anything that is not crmsync's (a crash, Ctrl-C)
    are raised, after the run is recorded as failed, or stopped for Ctrl-C.
    """
    conn, obj = connector.connection, connector.object_name
    cursor = None if (full or reconcile) else store.get_cursor(conn, obj)
    kind = "reconcile" if reconcile else "incremental" if cursor is not None else "full"
    summary = SyncSummary(conn, obj, kind)
    started = time.monotonic()
    calls_before = connector.meter.calls
    run_id = store.start_run(conn, obj, kind, _now())
    log.info("sync.started", connection=conn, object=obj, kind=kind)
    ending: BaseException | None = None  # what is propagating, if anything
    try:
        _pull(store, connector, cursor, summary, started, calls_before, progress, reconcile, full)
        if snapshots is not None:  # part of the run (its time counts), never its failure
            take_snapshot(
                store,
                conn,
                snapshots,
                stages=connector.mapping.stages,
                now=_now(),
                messages=summary.messages,
                changed=summary.upserted + summary.deleted > 0,
            )
    except QuotaStop as e:
        summary.status, summary.error, summary.failure = "stopped", str(e), e
        log.warning("sync.stopped", connection=conn, object=obj, reason=str(e))
    except CrmsyncError as e:
        summary.status, summary.error, summary.failure = "failed", str(e), e
        log.error("sync.failed", connection=conn, object=obj, error=str(e))
        if isinstance(e, StoreError):
            ending = e
            raise
    except (KeyboardInterrupt, SystemExit) as e:
        summary.status = "stopped"
        summary.error = "interrupted (Ctrl-C or a signal); the next sync resumes where it stopped"
        log.warning("sync.interrupted", connection=conn, object=obj, reason=type(e).__name__)
        ending = e
        raise
    except BaseException as e:
        summary.status, summary.error = "failed", f"crashed: {describe(e)}"
        log.error("sync.crashed", connection=conn, object=obj, error=describe(e))
        ending = e
        raise
    finally:
        _finish(store, run_id, summary, connector, started, calls_before, ending)
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


def _pull(
    store: Store,
    connector: Connector,
    cursor: Cursor | None,
    summary: SyncSummary,
    started: float,
    calls_before: int,
    progress: Progress | None,
    reconcile: bool,
    full: bool,
) -> None:
    """The sync itself: records, history, reconcile's deletions, then the summaries.

    Each phase fetches a page ahead while it stores the last (`Prefetch`) and commits every few
    seconds rather than every page (`Store.grouped_writes`): each page is still written whole
    with the cursor that covers it, and what ends the phase early commits the pages before it.
    """
    conn, obj = connector.connection, connector.object_name
    summarizer = StageSummarizer(connector.mapping.stages)
    stored_hcursor = store.get_cursor(conn, HISTORY_OBJECT)
    # A connection that never had CRM history pages (HubSpot) gets its summaries made page by
    # page, a new deal's from the rows in hand; where history pages follow (Salesforce), they
    # would remake them, so the records' pages leave that to the refresh at the end.
    in_step = summarizer if stored_hcursor is None else None
    # reference data the last sync read (a full sync reads it afresh): crmsync.connectors.cache
    connector.load_cache(None if cursor is None else store.get_cursor(conn, CACHE_OBJECT))
    connector.check()
    seen: set[str] | None = set() if reconcile else None
    pages = connector.pull(cursor, started_at=_now())
    with store.grouped_writes(), Prefetch(pages, name=f"pull {conn}") as prefetched:
        for page in _arriving(store, prefetched):
            if seen is not None:
                seen.update(o.native_id for o in page.opportunities)
                seen.update(s.native_id for s in page.set_aside)
                page.cursor = None  # a reconcile re-reads; it does not move the cursor
            _store_page(store, conn, obj, page, summary, in_step)
            _report(summary, connector, started, calls_before, progress)
    directory = connector.owner_directory()  # None unless the connection routes tasks
    if directory is not None:
        save_owners(store, conn, directory)
    hcursor = None if full else stored_hcursor
    history = connector.pull_history(hcursor)
    with store.grouped_writes(), Prefetch(history, name=f"history {conn}") as prefetched:
        for page in _arriving(store, prefetched):
            page.fetched = 0  # history rows are counted as history, not as records
            _store_page(store, conn, HISTORY_OBJECT, page, summary, None)
            _report(summary, connector, started, calls_before, progress)
    kept = connector.cache_cursor()
    if kept is not None:
        store.apply_batch(conn, CACHE_OBJECT, cursor=kept, observed_at=_now())
    if seen is not None:
        gone = sorted(store.native_ids(conn) - seen)
        if gone:
            _store_page(store, conn, obj, Page(deleted_ids=gone), summary, in_step)
        summary.messages.append(f"reconcile: {len(gone)} deleted in the CRM since last seen")
    # the deals this sync touched without a summarizer, and any synced before summaries
    # existed or with another stage mapping, are summarized now (a sync stopped early leaves
    # that to the next one)
    refreshed = store.refresh_summaries(conn, summarizer)
    if refreshed:
        log.info("summaries.refreshed", connection=conn, count=refreshed)


def _arriving(store: Store, pages: Prefetch[Page]) -> Iterator[Page]:
    """The pages as they arrive; the pages written so far are committed whenever the next one
    is not there yet: the CRM is slower than the store, so the commit costs no time, and no
    write lock is held while the CRM answers (a retry may wait a minute)."""
    while True:
        if not pages.ready():
            store.commit_pending()
        try:
            yield next(pages)
        except StopIteration:
            return


def _store_page(
    store: Store,
    conn: str,
    obj: str,
    page: Page,
    summary: SyncSummary,
    summarizer: StageSummarizer | None,
) -> None:
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
        summarizer=summarizer,
    )
    summary.fetched += page.fetched
    summary.inserted += result.inserted
    summary.updated += result.updated
    summary.unchanged += result.unchanged
    summary.deleted += result.deleted
    summary.history_rows += result.history_rows
    summary.set_aside += len(page.set_aside)
    for aside in page.set_aside:  # each record once per sync that reads it, with its reason
        log.warning(
            "sync.record_set_aside", connection=conn, record=aside.native_id, reason=aside.reason
        )


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
    ending: BaseException | None,
) -> None:
    """Record how the run ended. When an exception is on its way out and the store cannot
    record the end either (it is what failed), that is logged and the first exception wins."""
    _report(summary, connector, started, calls_before, None)
    try:
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
    except StoreError as e:
        if ending is None:
            raise
        log.error("sync.unrecorded", connection=summary.connection, run=run_id, error=str(e))


def _now() -> datetime:
    return datetime.now(UTC)
