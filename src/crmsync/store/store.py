"""The local store of normalized opportunities, their field history and the sync's bookkeeping."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from crmsync.model import Opportunity
from crmsync.model.records import (
    RUN_KINDS,
    RUN_STATUSES,
    BatchResult,
    Cursor,
    HistoryRow,
    HistorySummary,
    HistoryTuple,
    SetAside,
    Summarizer,
)
from crmsync.store import batch as batches
from crmsync.store import codec, columns, migrate, summaries
from crmsync.store.engine import WRITE, chunks, create_engine, parse_url
from crmsync.store.errors import StoreError, one_line, redact_url
from crmsync.store.schema import (
    field_history,
    history_summaries,
    job_runs,
    opportunities,
    sync_cursors,
    sync_runs,
)
from crmsync.store.schema import set_aside as set_aside_table
from crmsync.store.types import as_utc


class Store:
    """One database (a SQLite file or a PostgreSQL schema) holding every connection's records.

    Open it with `Store.open(url)`, which brings the schema up to date. Writes from a sync go
    through `apply_batch`, which commits records, history and cursor together or not at all.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self.url = url
        self.safe_url = redact_url(url)

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect, migrate to the newest schema (a no-op when current) and return the store."""
        parsed = parse_url(url)
        secret = parsed.password if isinstance(parsed.password, str) else None
        try:
            engine = create_engine(parsed)
        except (OSError, ImportError, sa.exc.SQLAlchemyError) as e:
            raise StoreError(f"cannot open store {redact_url(url)}: {one_line(e, secret)}") from e
        try:
            migrate.upgrade(engine)
        except (OSError, CommandError, sa.exc.SQLAlchemyError) as e:
            engine.dispose()
            raise StoreError(f"cannot open store {redact_url(url)}: {one_line(e, secret)}") from e
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
            raise StoreError(f"store {self.safe_url}: {action} failed: {one_line(e)}") from e

    @contextmanager
    def _writing(self, action: str) -> Iterator[Connection]:
        """A connection inside one write transaction, committed when the block ends cleanly."""
        with self._errors(action), self._engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _reading(self, action: str) -> Iterator[Connection]:
        """A connection for reads; it goes back to the pool when the block ends."""
        with self._errors(action), self._engine.connect() as conn:
            yield conn

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
        with self._writing("apply batch") as conn:
            return batches.apply(conn, batch)

    def get(self, key: str) -> Opportunity | None:
        """The stored opportunity with that key (deleted ones too), or None."""
        with self._reading("read opportunity") as conn:
            row = conn.execute(
                sa.select(*columns.OPP_COLUMNS).where(opportunities.c.key == key)
            ).first()
        return None if row is None else codec.opportunity(row)

    def get_many(self, keys: Sequence[str]) -> dict[str, Opportunity]:
        """The stored opportunities with these keys (those that exist), in one read per
        CHUNK keys."""
        out: dict[str, Opportunity] = {}
        with self._reading("read opportunities") as conn:
            for chunk in chunks(keys):
                query = sa.select(*columns.OPP_COLUMNS).where(opportunities.c.key.in_(list(chunk)))
                for row in conn.execute(query):
                    opp = codec.opportunity(row)
                    out[opp.key] = opp
        return out

    def iter_opportunities(
        self,
        connection: str | None = None,
        *,
        include_deleted: bool = False,
        batch_size: int = 2000,
    ) -> Iterator[Opportunity]:
        """Every stored opportunity, ordered by key, streamed batch_size rows at a time."""
        stmt = sa.select(*columns.OPP_RAW_COLUMNS).order_by(opportunities.c.key)
        stmt = self._filtered(stmt, connection, include_deleted)
        decode = codec.opportunity_from_raw
        with self._reading("read opportunities") as conn:
            result = conn.execution_options(yield_per=batch_size).execute(stmt)
            for part in result.partitions():
                for row in part:
                    yield decode(row)

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
        stmt = sa.select(*(opportunities.c[name] for name in names)).order_by(opportunities.c.key)
        stmt = self._filtered(stmt, connection, include_deleted)
        with self._reading("read opportunities") as conn:
            result = conn.execution_options(yield_per=batch_size).execute(stmt)
            for part in result.partitions():
                for row in part:
                    yield tuple(row)

    def native_ids(self, connection: str, *, include_deleted: bool = False) -> set[str]:
        """The CRM ids stored for a connection: what a reconcile compares with the CRM's."""
        stmt = self._filtered(sa.select(opportunities.c.native_id), connection, include_deleted)
        with self._reading("read ids") as conn:
            return set(conn.scalars(stmt))

    def count(self, connection: str | None = None, *, include_deleted: bool = False) -> int:
        """How many opportunities are stored (for one connection, or all)."""
        stmt = self._filtered(sa.select(sa.func.count()), connection, include_deleted)
        with self._reading("count opportunities") as conn:
            return int(conn.scalar(stmt) or 0)

    @staticmethod
    def _filtered(
        stmt: sa.Select[Any], connection: str | None, include_deleted: bool
    ) -> sa.Select[Any]:
        stmt = stmt.select_from(opportunities)
        if connection is not None:
            stmt = stmt.where(opportunities.c.connection == connection)
        if not include_deleted:
            stmt = stmt.where(opportunities.c.deleted.is_(False))
        return stmt

    # --- history ---------------------------------------------------------------------------

    def history(self, key: str, field: str | None = None) -> list[HistoryRow]:
        """An opportunity's field changes (of one field, or all), oldest first."""
        stmt = sa.select(*columns.HISTORY_COLUMNS).where(field_history.c.key == key)
        if field is not None:
            stmt = stmt.where(field_history.c.field == field)
        stmt = stmt.order_by(field_history.c.changed_at, field_history.c.id)
        with self._reading("read history") as conn:
            return [HistoryRow(*row) for row in conn.execute(stmt)]

    def iter_history(
        self, connection: str | None = None, fields: Sequence[str] | None = None
    ) -> Iterator[HistoryRow]:
        """Every history row (of one connection, of some fields), by key then time, streamed."""
        stmt = columns.history_stream(columns.HISTORY_COLUMNS, connection, fields)
        with self._reading("read history") as conn:
            result = conn.execution_options(yield_per=2000).execute(stmt)
            for part in result.partitions():
                for row in part:
                    yield HistoryRow(*row)

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
        stmt = columns.history_stream(columns.HISTORY_RAW_COLUMNS, connection, fields)
        make = HistoryTuple._make
        with self._reading("read history") as conn:
            result = conn.execution_options(yield_per=batch_size).execute(stmt)
            for part in result.partitions():
                for key, field, old, new, at, origin in part:
                    yield make((key, field, old, new, as_utc(at), origin))

    # --- history summaries -----------------------------------------------------------------

    def iter_summarized(
        self, connection: str, version: str, *, stays: bool = True, batch_size: int = 2000
    ) -> Iterator[tuple[Opportunity, HistorySummary | None]]:
        """`iter_opportunities` with each deal's history summary of `version` (None where it
        is missing or of another version), read in the same row. With `stays=False` the
        summaries' stays are left empty, unread (`iter_summary_stays` reads them alone)."""
        current = sa.and_(
            history_summaries.c.key == opportunities.c.key,
            history_summaries.c.version == version,
        )
        stmt = self._filtered(
            sa.select(*columns.OPP_RAW_COLUMNS, *summaries.value_columns(stays)), connection, False
        )
        stmt = stmt.select_from(opportunities.outerjoin(history_summaries, current))
        stmt = stmt.order_by(opportunities.c.key)
        n = len(columns.OPP_RAW_COLUMNS)
        decode_opp, decode_summary = codec.opportunity_from_raw, summaries.decode
        with self._reading("read opportunities") as conn:
            result = conn.execution_options(yield_per=batch_size).execute(stmt)
            for part in result.partitions():
                for row in part:
                    values = row[n:]
                    summary = None if values[1] is None else decode_summary(values)
                    yield decode_opp(row[:n]), summary

    def iter_summary_stays(
        self, connection: str, version: str, *, batch_size: int = 5000
    ) -> Iterator[tuple[str | None, tuple[tuple[str, float], ...] | None]]:
        """(pipeline, completed stays) of each live deal whose summary of `version` lists any,
        and (pipeline, None) for each live deal without a summary of `version`: what a
        pipeline's stage durations are made of, and whether they can be made of this alone."""
        current = sa.and_(
            history_summaries.c.key == opportunities.c.key,
            history_summaries.c.version == version,
        )
        stmt = self._filtered(
            sa.select(opportunities.c.pipeline, summaries.STAYS), connection, False
        ).outerjoin(history_summaries, current)
        decode, empty = summaries.decode_stays, summaries.NO_STAYS
        with self._reading("read history summaries") as conn:
            result = conn.execution_options(yield_per=batch_size).execute(stmt)
            for part in result.partitions():
                for pipeline, stays in part:
                    if stays is None:
                        yield pipeline, None
                    elif stays and stays != empty:
                        yield pipeline, decode(stays)

    def has_summaries(self, connection: str, version: str) -> bool:
        """Whether any deal of a connection has a history summary of `version` (one index
        probe): none right after an upgrade or a stage mapping change, until the next sync."""
        prefix = connection + ":"
        stmt = (
            sa.select(history_summaries.c.key)
            .where(
                history_summaries.c.key.startswith(prefix, autoescape=True),
                history_summaries.c.version == version,
            )
            .limit(1)
        )
        with self._reading("read history summaries") as conn:
            return conn.execute(stmt).first() is not None

    def stale_summaries(self, connection: str, version: str) -> int:
        """How many live deals of a connection have no history summary of `version`."""
        current = sa.select(history_summaries.c.key).where(
            history_summaries.c.key == opportunities.c.key,
            history_summaries.c.version == version,
        )
        stmt = self._filtered(sa.select(sa.func.count()), connection, False)
        with self._reading("count history summaries") as conn:
            return int(conn.scalar(stmt.where(~current.exists())) or 0)

    def refresh_summaries(
        self, connection: str, summarizer: Summarizer, *, batch_size: int = 2000
    ) -> int:
        """Summarize every deal of a connection (deleted ones too) whose summary is missing or
        of another version, `batch_size` deals a transaction; returns how many were made."""
        current = sa.select(history_summaries.c.key).where(
            history_summaries.c.key == opportunities.c.key,
            history_summaries.c.version == summarizer.version,
        )
        stale = self._filtered(sa.select(opportunities.c.key), connection, True)
        stale = stale.where(~current.exists()).order_by(opportunities.c.key).limit(batch_size)
        made, after = 0, ""
        while True:  # a page of keys at a time, in key order: memory stays flat
            with self._writing("refresh history summaries") as conn:
                keys = list(conn.scalars(stale.where(opportunities.c.key > after)))
                if not keys:
                    return made
                made += summaries.remake(conn, keys, summarizer)
            after = keys[-1]

    # --- cursors ---------------------------------------------------------------------------

    def get_cursor(self, connection: str, obj: str) -> Cursor | None:
        """Where the last committed batch left an object's incremental sync, or None."""
        stmt = sa.select(sync_cursors.c.value, sync_cursors.c.ids_at_value).where(
            sync_cursors.c.connection == connection, sync_cursors.c.object == obj
        )
        with self._reading("read cursor") as conn:
            row = conn.execute(stmt).first()
        return None if row is None else Cursor(row[0], tuple(row[1]))

    def reset_cursor(self, connection: str, obj: str) -> None:
        """Forget the cursor, so the next sync of the object starts from the beginning."""
        with self._writing("reset cursor") as conn:
            conn.execute(
                sa.delete(sync_cursors).where(
                    sync_cursors.c.connection == connection, sync_cursors.c.object == obj
                )
            )

    # --- runs ------------------------------------------------------------------------------

    def start_run(self, connection: str, obj: str, kind: str, started_at: datetime) -> int:
        """Record a sync run as running; returns its id for finish_run."""
        if kind not in RUN_KINDS:
            raise ValueError(f"run kind must be one of {', '.join(RUN_KINDS)}, not {kind!r}")
        values = {
            "connection": connection,
            "object": obj,
            "kind": kind,
            "started_at": started_at,
            "status": "running",
            **dict.fromkeys(("fetched", "upserted", "deleted", "set_aside", "api_calls"), 0),
        }
        with self._writing("start run") as conn:
            result = conn.execute(sa.insert(sync_runs).values(values).returning(sync_runs.c.id))
            return int(result.scalar_one())

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
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}")
        with self._writing("finish run") as conn:
            started = conn.scalar(sa.select(sync_runs.c.started_at).where(sync_runs.c.id == run_id))
            if started is None:
                raise ValueError(f"no sync run with id {run_id}")
            conn.execute(
                sa.update(sync_runs)
                .where(sync_runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=finished_at,
                    fetched=fetched,
                    upserted=upserted,
                    deleted=deleted,
                    set_aside=set_aside,
                    api_calls=api_calls,
                    error=error,
                    duration_seconds=(finished_at - started).total_seconds(),
                )
            )

    def close_abandoned_runs(self, finished_at: datetime, error: str) -> int:
        """Mark every run still `running` as failed with `error`; returns how many.

        For a worker taking over the jobs: a run left running then belonged to a worker that
        died mid-sync (its records and cursor are safe: batches commit whole), and would
        otherwise show as running for ever in `crmsync status` and the metrics.
        """
        with self._writing("close abandoned runs") as conn:
            stale = conn.execute(
                sa.select(sync_runs.c.id, sync_runs.c.started_at).where(
                    sync_runs.c.status == "running"
                )
            ).all()
            for run_id, started in stale:
                conn.execute(
                    sa.update(sync_runs)
                    .where(sync_runs.c.id == run_id, sync_runs.c.status == "running")
                    .values(
                        status="failed",
                        finished_at=finished_at,
                        error=error,
                        duration_seconds=max(0.0, (finished_at - started).total_seconds()),
                    )
                )
        return len(stale)

    def record_job_run(
        self, job: str, *, started_at: datetime, finished_at: datetime, status: str
    ) -> None:
        """Remember the last run of a scheduled job (one row a job, replaced each time)."""
        with self._writing("record job run") as conn:
            conn.execute(sa.delete(job_runs).where(job_runs.c.job == job))
            conn.execute(
                sa.insert(job_runs).values(
                    job=job, started_at=started_at, finished_at=finished_at, status=status
                )
            )

    def last_job_run(self, job: str) -> datetime | None:
        """When the last recorded run of a scheduled job started, or None."""
        with self._reading("read job run") as conn:
            started: datetime | None = conn.scalar(
                sa.select(job_runs.c.started_at).where(job_runs.c.job == job)
            )
        return started

    def job_runs(self) -> list[dict[str, Any]]:
        """The last run of every scheduled job that has run, by job name."""
        with self._reading("read job runs") as conn:
            rows = conn.execute(sa.select(job_runs).order_by(job_runs.c.job))
            return [dict(row._mapping) for row in rows]

    def runs(self, connection: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest sync runs, newest first, each as a dict of its columns."""
        stmt = sa.select(sync_runs).order_by(sync_runs.c.started_at.desc(), sync_runs.c.id.desc())
        if connection is not None:
            stmt = stmt.where(sync_runs.c.connection == connection)
        with self._reading("read runs") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt.limit(limit))]

    # --- set aside -------------------------------------------------------------------------

    def set_aside_rows(self, connection: str | None = None) -> list[tuple[str, SetAside]]:
        """Records that could not be normalized, as (connection, record), by connection and id."""
        stmt = sa.select(set_aside_table).order_by(
            set_aside_table.c.connection, set_aside_table.c.native_id
        )
        if connection is not None:
            stmt = stmt.where(set_aside_table.c.connection == connection)
        with self._reading("read set-aside records") as conn:
            return [
                (row.connection, SetAside(row.native_id, row.reason, row.raw))
                for row in conn.execute(stmt)
            ]
