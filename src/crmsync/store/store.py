"""The local store of normalized opportunities, their field history and the sync's bookkeeping."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from crmsync.model import Opportunity
from crmsync.model.records import (
    BatchResult,
    Cursor,
    HistoryRow,
    HistorySummary,
    HistoryTuple,
    SetAside,
    Summarizer,
)
from crmsync.store import batch as batches
from crmsync.store import job_runs as job_log
from crmsync.store import leases, migrate, records, summaries, write_group
from crmsync.store import runs as run_log
from crmsync.store.engine import WRITE, create_engine, parse_url
from crmsync.store.errors import one_line, redact_url, store_error
from crmsync.store.leases import LeaseState
from crmsync.store.schema import sync_cursors
from crmsync.store.write_group import ThreadGroups


class Store:
    """One database (a SQLite file or a PostgreSQL schema) holding every connection's records.

    Open it with `Store.open(url)`, which brings the schema up to date. Writes from a sync go
    through `apply_batch`, which commits records, history and cursor together or not at all.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self.url = url
        self.safe_url = redact_url(url)
        self._groups = ThreadGroups()

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Store:
        """Connect, migrate to the newest schema (a no-op when current) and return the store.
        `create` False: a SQLite file that does not exist is `StoreMissing`, not made."""
        parsed = parse_url(url, must_exist=not create)
        secret = parsed.password if isinstance(parsed.password, str) else None
        engine: Engine | None = None
        try:
            engine = create_engine(parsed)
            migrate.upgrade(engine)
        except (OSError, ImportError, CommandError, sa.exc.SQLAlchemyError) as e:
            if engine is not None:
                engine.dispose()
            message = f"cannot open store {redact_url(url)}: {one_line(e, secret)}"
            raise store_error(message, e) from e
        return cls(engine, url)

    def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Database failures (lost connection, locked file, full disk) as one-line StoreErrors."""
        try:
            yield
        except sa.exc.DBAPIError as e:
            raise store_error(f"store {self.safe_url}: {action} failed: {one_line(e)}", e) from e

    @contextmanager
    def writing(self, action: str) -> Iterator[Connection]:
        """A connection inside one write transaction, committed when the block ends cleanly;
        database failures come out as StoreErrors naming `action`. For the store's own modules
        (outbox, ...) and tests: code outside the store calls the methods instead."""
        self._groups.flush(self._errors)
        with self._errors(action), self._engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def reading(self, action: str) -> Iterator[Connection]:
        """A connection for reads; it goes back to the pool when the block ends. Failures as in
        `writing`."""
        self._groups.flush(self._errors)
        with self._errors(action), self._engine.connect() as conn:
            yield conn

    def ping(self) -> None:
        """Reach the database with a trivial query; a StoreError when it cannot be reached."""
        with self.reading("check database") as conn:
            conn.execute(sa.text("SELECT 1"))

    # --- records ---------------------------------------------------------------------------

    def apply_batch(
        self,
        connection: str,
        obj: str,
        *,
        opportunities: Sequence[Opportunity] = (),
        deleted_ids: Sequence[str] = (),
        history: Sequence[HistoryRow] = (),
        set_aside: Sequence[SetAside] = (),
        cursor: Cursor | None = None,
        observed_at: datetime,
        summarizer: Summarizer | None = None,
    ) -> BatchResult:
        """Write one page of a sync in ONE transaction: upsert the records (with 'observed'
        history for tracked fields that changed), mark deleted ids deleted, add CRM history
        (duplicates skipped), keep or clear set-aside records, and move the cursor. All of it
        commits or none does, so the cursor never moves past records that were not stored.

        With a `summarizer`, the history summaries of the deals it touched are remade too (in the
        same transaction); without one they are dropped, to be remade by `refresh_summaries`.
        """
        batch = batches.Batch(
            connection,
            obj,
            opportunities,
            deleted_ids,
            history,
            set_aside,
            cursor,
            observed_at,
            summarizer,
        )
        group = self._groups.current()
        if group is not None:
            with self._errors("apply batch"):
                return group.apply(batch)
        with self.writing("apply batch") as conn:
            return batches.apply(conn, batch)

    def grouped_writes(
        self, *, seconds: float | None = None, rows: int | None = None
    ) -> AbstractContextManager[None]:
        """Inside the block, this thread's `apply_batch` calls share one transaction, committed
        every `seconds` or `rows` and when the block ends (see `store.write_group`): a page
        still commits whole with its cursor, but a sync commits a few times, not once a page.
        Any other call on the store from the thread commits the pages written so far first."""
        return self._groups.grouped(
            self._engine,
            self._errors,
            write_group.COMMIT_SECONDS if seconds is None else seconds,
            write_group.COMMIT_ROWS if rows is None else rows,
        )

    def commit_pending(self) -> None:
        """Commit the pages this thread's group holds (nothing when none): before waiting for
        something slow, so that no lock is held meanwhile."""
        self._groups.flush(self._errors)

    def get(self, key: str) -> Opportunity | None:
        """The stored opportunity with that key (deleted ones too), or None."""
        with self.reading("read opportunity") as conn:
            return records.get(conn, key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Opportunity]:
        """The stored opportunities with these keys (those that exist), in one read per
        CHUNK keys."""
        with self.reading("read opportunities") as conn:
            return records.get_many(conn, keys)

    def find(self, ref: str, *, limit: int = 20) -> list[Opportunity]:
        """The opportunities `ref` names (deleted ones too): its key, its CRM id, else its name
        (case-insensitive); at most `limit`, by key."""
        with self.reading("find opportunities") as conn:
            return records.find(conn, ref, limit)

    def iter_opportunities(
        self,
        connection: str | None = None,
        *,
        include_deleted: bool = False,
        batch_size: int = 2000,
    ) -> Iterator[Opportunity]:
        """Every stored opportunity, ordered by key, streamed batch_size rows at a time."""
        with self.reading("read opportunities") as conn:
            yield from records.iter_opportunities(conn, connection, include_deleted, batch_size)

    def iter_opportunity_values(
        self,
        connection: str | None,
        names: Sequence[str],
        *,
        include_deleted: bool = False,
        batch_size: int = 5000,
    ) -> Iterator[tuple[Any, ...]]:
        """Some columns of every stored opportunity (key order, as `iter_opportunities`), as
        tuples: for readers that need a few fields of each, not the whole record."""
        with self.reading("read opportunities") as conn:
            yield from records.iter_values(conn, connection, names, include_deleted, batch_size)

    def native_ids(self, connection: str, *, include_deleted: bool = False) -> set[str]:
        """The CRM ids stored for a connection: what a reconcile compares with the CRM's."""
        with self.reading("read ids") as conn:
            return records.native_ids(conn, connection, include_deleted)

    def count(self, connection: str | None = None, *, include_deleted: bool = False) -> int:
        """How many opportunities are stored (for one connection, or all)."""
        with self.reading("count opportunities") as conn:
            return records.count(conn, connection, include_deleted)

    # --- history ---------------------------------------------------------------------------

    def history(self, key: str, field: str | None = None) -> list[HistoryRow]:
        """An opportunity's field changes (of one field, or all), oldest first."""
        with self.reading("read history") as conn:
            return records.history(conn, key, field)

    def iter_history(
        self, connection: str | None = None, fields: Sequence[str] | None = None
    ) -> Iterator[HistoryRow]:
        """Every history row (of one connection, of some fields), by key then time, streamed."""
        with self.reading("read history") as conn:
            yield from records.iter_history(conn, connection, fields)

    def iter_history_tuples(
        self,
        connection: str | None = None,
        fields: Sequence[str] | None = None,
        *,
        batch_size: int = 5000,
    ) -> Iterator[HistoryTuple]:
        """`iter_history` as light tuples, for readers of many rows (workflow evaluation).

        Same rows, same order, same values; the time stamps are converted here in one step
        rather than through the column type, and no dataclass is built per row.
        """
        with self.reading("read history") as conn:
            yield from records.iter_history_tuples(conn, connection, fields, batch_size)

    # --- history summaries -----------------------------------------------------------------

    def iter_summarized(
        self, connection: str, version: str, *, stays: bool = True, batch_size: int = 2000
    ) -> Iterator[tuple[Opportunity, HistorySummary | None]]:
        """`iter_opportunities` with each deal's history summary of `version` (None where it
        is missing or of another version), read in the same row. With `stays=False` the
        summaries' stays are left empty, unread (`iter_summary_stays` reads them alone)."""
        with self.reading("read opportunities") as conn:
            yield from summaries.iter_summarized(
                conn, connection, version, stays=stays, batch_size=batch_size
            )

    def iter_summary_stays(
        self, connection: str, version: str, *, batch_size: int = 5000
    ) -> Iterator[tuple[str | None, tuple[tuple[str, float], ...] | None]]:
        """(pipeline, completed stays) of each live deal whose summary of `version` lists any,
        and (pipeline, None) for each live deal without a summary of `version`: what a
        pipeline's stage durations are made of, and whether they can be made of this alone."""
        with self.reading("read history summaries") as conn:
            yield from summaries.iter_stays(conn, connection, version, batch_size=batch_size)

    def has_summaries(self, connection: str, version: str) -> bool:
        """Whether any deal of a connection has a history summary of `version` (one index
        probe): none right after an upgrade or a stage mapping change, until the next sync."""
        with self.reading("read history summaries") as conn:
            return summaries.any_of(conn, connection, version)

    def stale_summaries(self, connection: str, version: str) -> int:
        """How many live deals of a connection have no history summary of `version`."""
        with self.reading("count history summaries") as conn:
            return summaries.count_stale(conn, connection, version)

    def refresh_summaries(
        self, connection: str, summarizer: Summarizer, *, batch_size: int = 2000
    ) -> int:
        """Summarize every deal of a connection (deleted ones too) whose summary is missing or
        of another version, `batch_size` deals a transaction; returns how many were made."""
        made, after = 0, ""
        with write_group.fewer_collections():
            while True:  # a page of keys at a time, in key order: memory stays flat
                with self.writing("refresh history summaries") as conn:
                    n, last = summaries.refresh_page(
                        conn, connection, summarizer, after, batch_size
                    )
                if last is None:
                    return made
                made, after = made + n, last

    # --- cursors ---------------------------------------------------------------------------

    def get_cursor(self, connection: str, obj: str) -> Cursor | None:
        """Where the last committed batch left an object's incremental sync, or None."""
        stmt = sa.select(sync_cursors.c.value, sync_cursors.c.ids_at_value).where(
            sync_cursors.c.connection == connection, sync_cursors.c.object == obj
        )
        with self.reading("read cursor") as conn:
            row = conn.execute(stmt).first()
        return None if row is None else Cursor(row[0], tuple(row[1]))

    def reset_cursor(self, connection: str, obj: str) -> None:
        """Forget the cursor, so the next sync of the object starts from the beginning."""
        with self.writing("reset cursor") as conn:
            conn.execute(
                sa.delete(sync_cursors).where(
                    sync_cursors.c.connection == connection, sync_cursors.c.object == obj
                )
            )

    # --- runs ------------------------------------------------------------------------------

    def start_run(self, connection: str, obj: str, kind: str, started_at: datetime) -> int:
        """Record a sync run as running; returns its id for finish_run."""
        with self.writing("start run") as conn:
            return run_log.start(conn, connection, obj, kind, started_at)

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        finished_at: datetime,
        fetched: int = 0,
        upserted: int = 0,
        deleted: int = 0,
        set_aside: int = 0,
        api_calls: int = 0,
        error: str | None = None,
    ) -> None:
        """Record how a run ended, with its counts; the duration comes from its start."""
        run_log.check_status(status)
        counts = {
            "fetched": fetched,
            "upserted": upserted,
            "deleted": deleted,
            "set_aside": set_aside,
            "api_calls": api_calls,
        }
        with self.writing("finish run") as conn:
            run_log.finish(
                conn, run_id, status=status, finished_at=finished_at, error=error, counts=counts
            )

    def close_abandoned_runs(
        self, finished_at: datetime, error: str, connection: str | None = None
    ) -> int:
        """Mark every run still `running` (of `connection`, or all) as failed; how many.

        For a worker taking over: such a run belonged to a worker that died mid-sync (its pages
        committed whole), and would show as running for ever in `crmsync status`."""
        with self.writing("close abandoned runs") as conn:
            return run_log.close_abandoned(conn, finished_at, error, connection)

    def runs(self, connection: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest sync runs, newest first, each as a dict of its columns."""
        with self.reading("read runs") as conn:
            return run_log.latest(conn, connection, limit)

    def last_successful_sync(self, connection: str) -> datetime | None:
        """When the connection's last successful sync finished, or None."""
        with self.reading("read last sync") as conn:
            return run_log.last_success(conn, connection)

    def last_full_pass(self, connection: str) -> datetime | None:
        """When the connection's last successful full sync or reconcile started, or None."""
        with self.reading("read last full sync") as conn:
            return run_log.last_full_pass(conn, connection)

    # --- scheduled jobs and leases (for `crmsync run`) ---------------------------------------

    def record_job_run(
        self, job: str, *, started_at: datetime, finished_at: datetime, status: str
    ) -> None:
        """Remember the last run of a scheduled job (one row a job, replaced each time)."""
        with self.writing("record job run") as conn:
            job_log.record(conn, job, started_at=started_at, finished_at=finished_at, status=status)

    def last_job_run(self, job: str) -> datetime | None:
        """When the last recorded run of a scheduled job started, or None."""
        with self.reading("read job run") as conn:
            return job_log.last_started(conn, job)

    def job_runs(self) -> list[dict[str, Any]]:
        """The last run of every scheduled job that has run, by job name."""
        with self.reading("read job runs") as conn:
            return job_log.every(conn)

    def take_lease(self, name: str, holder: str, *, now: datetime, expires_at: datetime) -> bool:
        """Take the named lease if it is free or expired, or renew it if `holder` holds it, in
        one transaction: True when `holder` now holds it until `expires_at`, False when another
        holder's lease still runs. Of several holders racing, exactly one wins."""
        with self.writing("acquire lease") as conn:
            return leases.take(conn, name, holder, now, expires_at)

    def release_lease(self, name: str, holder: str, *, now: datetime) -> bool:
        """Let `holder`'s lease expire `now` (others' are untouched); True when it held it."""
        with self.writing("release lease") as conn:
            return leases.release(conn, name, holder, now)

    def lease(self, name: str) -> LeaseState | None:
        """The named lease as stored (whoever holds it, expired or not), or None."""
        with self.reading("read lease") as conn:
            return leases.read(conn, name)

    # --- set aside -------------------------------------------------------------------------

    def set_aside_rows(self, connection: str | None = None) -> list[tuple[str, SetAside]]:
        """Records that could not be normalized, as (connection, record), by connection and id."""
        with self.reading("read set-aside records") as conn:
            return records.set_aside_rows(conn, connection)
