"""Opportunities and their history summaries as columns (polars frames over Arrow batches), for
the columnar evaluation: only the columns a workflow reads, a batch at a time, no Python rows.

On a SQLite file and on PostgreSQL the rows never become Python objects: the ADBC drivers hand
Arrow record batches straight to polars. An in-memory SQLite store (tests) or a machine without
the drivers is read through SQLAlchemy's rows instead: the same frames, slower.

Every column comes out with one type whatever the backend: text, float, int, bool, date, or
datetime in UTC microseconds; `amount` as its exact text (the evaluator parses it).
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog

from crmsync.model import FIELDS
from crmsync.store.schema import history_summaries, opportunities

if TYPE_CHECKING:
    import polars as pl

    from crmsync.store.store import Store

log = structlog.get_logger("crmsync.store")

# The summary columns a deal's evaluation reads, as the frame names them.
SUMMARY_COLUMNS = {
    "s_stage_entered_at": "datetime",
    "s_close_date_push_count": "int",
    "s_close_date_slip_days": "int",
    "s_next_step_changed_at": "datetime",
    "s_skipped_stages": "text",
    "s_stage_regressions": "int",
    "s_stays": "text",
}
# Rows a sqlite3 fetch turns into Python objects at once: a few thousand keep the interpreter's
# share of a batch small (a 50,000-row fetch held some 60 MB of tuples and strings).
FETCH = 5_000
_TYPES = {"str": "text", "decimal": "text", "float": "float", "bool": "bool"}
_TYPES.update({"date": "date", "datetime": "datetime"})


def column_type(name: str) -> str:
    """The frame type of an opportunity column or a summary column."""
    if name == "key":
        return "text"
    if name in SUMMARY_COLUMNS:
        return SUMMARY_COLUMNS[name]
    return _TYPES[FIELDS[name].type] if name in FIELDS else "text"


def readable(name: str) -> bool:
    """Whether `name` is a column this reader can give (a typed field or a summary value)."""
    return (
        name == "key"
        or name in SUMMARY_COLUMNS
        or (name in FIELDS and name in opportunities.c and FIELDS[name].type in _TYPES)
    )


def _select(
    connection: str, version: str, names: Sequence[str], *, dates_as_text: bool = False
) -> sa.Select[Any]:
    """The statement: each column cast to one storage type, so that SQLite's per-value types
    cannot change from one batch to the next (dates and stamps too with `dates_as_text`: SQLite
    keeps them as text); live deals only, by key."""
    parts: list[Any] = []
    for name in names:
        kind = column_type(name)
        if name in SUMMARY_COLUMNS:
            column: Any = history_summaries.c[name[2:]]
        else:
            column = opportunities.c[name]
        if kind == "text" or (dates_as_text and kind in ("date", "datetime")):
            column = sa.cast(column, sa.Text)
        elif kind == "float":
            column = sa.cast(column, sa.Float)
        elif kind in ("int",):
            column = sa.cast(column, sa.Integer)
        elif kind == "bool":
            column = sa.cast(sa.case((column.is_(None), None), (column, 1), else_=0), sa.Integer)
        else:
            column = sa.type_coerce(column, sa.types.NullType())
        parts.append(column.label(name))
    parts.append(sa.cast(history_summaries.c.version, sa.Text).label("s_version"))
    join = sa.and_(
        history_summaries.c.key == opportunities.c.key, history_summaries.c.version == version
    )
    return (
        sa.select(*parts)
        .select_from(opportunities.outerjoin(history_summaries, join))
        .where(opportunities.c.connection == connection, opportunities.c.deleted.is_(False))
        .order_by(opportunities.c.key)
    )


def read_frames(
    store: Store,
    connection: str,
    version: str,
    names: Sequence[str],
    *,
    batch_size: int,
    readers: int = 1,
    others_after: Callable[[], None] | None = None,
) -> Iterator[pl.DataFrame]:
    """The live deals of a connection, `names` columns plus `s_version` (None where the deal
    has no summary of `version`), in key order, `batch_size` rows a frame. A big SQLite store
    may be read by `readers` helper processes at once, taking runs of keys in turn (more than
    one pays only when nothing else is reading meanwhile: `others_after`, when given, returns
    once the others may start)."""
    names = list(dict.fromkeys(["key", *names]))
    url = sa.make_url(store.url)
    backend = url.get_backend_name()
    stmt = _select(connection, version, names, dates_as_text=backend == "sqlite")
    stored = helper_deals(store, url, connection) if backend == "sqlite" else 0
    if stored:
        runs = _key_runs(store, stmt, connection, stored, readers)
        frames = _sqlite_arrow(store, url, stmt, runs, names, batch_size, readers, others_after)
    elif backend == "sqlite":
        frames = _sqlite_rows(store, stmt, names, batch_size)
    elif backend == "postgresql" and _has("postgresql") and (pg := _pg_connect(url)):
        frames = _adbc_postgresql(pg, stmt, batch_size)
    else:
        frames = _rows(store, stmt, names, batch_size)
    last: str | None = None
    for frame in _as_store_errors(frames, store):
        if not frame.height:
            continue
        keys = frame["key"]
        if not keys.is_sorted() or (last is not None and keys[0] <= last):
            raise RuntimeError("the store gave deals out of key order")  # a driver change
        last = keys[-1]
        yield _typed(frame, names)


def _as_store_errors(frames: Iterator[pl.DataFrame], store: Store) -> Iterator[pl.DataFrame]:
    """The drivers' failures (a database gone mid-read, a damaged file) as the store's own
    one-line error, as SQLAlchemy's are, never a driver's traceback."""
    import sqlite3

    from adbc_driver_manager import Error as DriverError

    from crmsync.store.errors import StoreUnavailable, one_line, store_error

    try:
        yield from frames
    except sqlite3.Error as e:  # sqlite3's own cursor (_sqlite_rows): SQLAlchemy wraps nothing
        said = f"store {store.safe_url}: read opportunities failed: {one_line(e)}"
        raise store_error(said, e) from e
    except (OSError, DriverError) as e:  # pyarrow's stream errors are OSError
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise StoreUnavailable(f"cannot read store {store.safe_url}: {first}") from e


def helper_deals(store: Store, url: sa.URL, connection: str) -> int:
    """How many deals a SQLite file store's connection has (`sqlite_arrow.deal_count`) when the
    ADBC helper process reads them (many deals, the driver installed); 0 when sqlite3's rows
    do."""
    from crmsync.store import sqlite_arrow

    database = url.database or ""
    if not database or database == ":memory:" or url.query:  # URI forms: sqlite3 knows them
        return 0
    if not sqlite_arrow.available():
        return 0
    with store.reading("read opportunities") as conn:
        deals = sqlite_arrow.deal_count(conn, connection)
    return deals if deals >= sqlite_arrow.HELPER_FROM else 0


def _key_runs(
    store: Store, stmt: sa.Select[Any], connection: str, deals: int, readers: int
) -> list[sa.Select[Any]]:
    """`stmt` cut into runs of keys for `readers` helpers to read in turn
    (`sqlite_arrow.split_keys`; `deals` as `helper_deals` counted them), or alone."""
    from crmsync.store import sqlite_arrow

    with store.reading("read opportunities") as conn:
        cuts = sqlite_arrow.split_keys(conn, connection, deals, readers)
    if not cuts:
        return [stmt]
    key = opportunities.c.key
    runs = [stmt.where(key < cuts[0])]
    runs += [stmt.where(key >= lo, key < hi) for lo, hi in itertools.pairwise(cuts)]
    runs.append(stmt.where(key >= cuts[-1]))
    return runs


def _sqlite_arrow(
    store: Store,
    url: sa.URL,
    stmt: sa.Select[Any],
    runs: list[sa.Select[Any]],
    names: Sequence[str],
    batch_size: int,
    readers: int,
    others_after: Callable[[], None] | None,
) -> Iterator[pl.DataFrame]:
    """SQLite's rows as Arrow from helper processes (sqlite_arrow.py): `runs` (`_key_runs` of
    `stmt`) read `readers` at a time in turn (in_turn.in_order), in frames of `batch_size`. A
    failure is the store's one-line error; helpers that cannot start leave `stmt` to sqlite3."""
    from sqlalchemy.dialects import sqlite

    from crmsync.store import sqlite_arrow
    from crmsync.store.errors import said_error
    from crmsync.store.in_turn import in_order

    columns = [*names, "s_version"]
    kinds = [_helper_kind(column_type(n) if n != "s_version" else "text") for n in columns]
    step = min(batch_size, FETCH * 2)
    later = None
    if others_after is not None:
        waited = others_after

        def later() -> None:
            sqlite_arrow.spare()  # the next helper starts up while the others read
            waited()

    path = url.database or ""

    def reader(run: sa.Select[Any]) -> Callable[[], Iterator[pl.DataFrame]]:
        sql = sqlite_arrow.typed_query(sql_text(run, sqlite.dialect()), columns, kinds)
        return lambda: sqlite_arrow.arrow_frames(path, sql, rows=step)

    try:
        yield from _rebatched(
            in_order([reader(run) for run in runs], at_once=readers, later=later),
            batch_size,
        )
    except sqlite_arrow.HelperFailed as e:
        if e.cannot_start:  # a broken install: slower, not failed
            log.warning("store.sqlite_reader_unavailable", reason=str(e))
            yield from _sqlite_rows(store, stmt, names, batch_size)
            return
        raise said_error(f"store {store.safe_url}: read opportunities failed: {e}", str(e)) from e


def _frame(batch: Any) -> pl.DataFrame:
    import polars as pl

    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _rebatched(frames: Iterator[pl.DataFrame], batch_size: int) -> Iterator[pl.DataFrame]:
    """The driver's batches as frames of exactly `batch_size` rows (the last one fewer)."""
    import polars as pl

    rest: pl.DataFrame | None = None
    for frame in frames:
        rest = frame if rest is None else pl.concat([rest, frame], how="vertical_relaxed")
        while rest.height >= batch_size:
            yield rest.slice(0, batch_size)
            rest = rest.slice(batch_size)
    if rest is not None and rest.height:
        yield rest


def _helper_kind(kind: str) -> str:
    return {"float": "float", "int": "int", "bool": "int"}.get(kind, "text")


def _pg_connect(url: sa.URL) -> Any:
    """An ADBC connection to the store, or None when libpq (under the driver) refuses this
    URL: a URL with options only SQLAlchemy knows is read through SQLAlchemy instead."""
    import adbc_driver_postgresql.dbapi as dbapi

    try:
        return dbapi.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    except Exception:
        return None


def _has(backend: str) -> bool:
    return importlib.util.find_spec(f"adbc_driver_{backend}") is not None


def sql_text(stmt: sa.ClauseElement, dialect: sa.engine.Dialect) -> str:
    """The statement as text, its few literals inline (a connection name, a version)."""
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _sqlite_rows(
    store: Store, stmt: sa.Select[Any], names: Sequence[str], batch_size: int
) -> Iterator[pl.DataFrame]:
    """SQLite's rows through the sqlite3 module, its values as stored (no type conversion per
    value), a batch at a time. Not through ADBC's SQLite driver: it carries a SQLite library of
    its own, and two SQLite libraries in one process that open the same database file break
    each other's POSIX locks (closing a file drops every lock the process holds on it, and a
    second library takes itself for the first user of the WAL's shared memory and resets it:
    the writer's next access died with SIGBUS in a benchmark). See "Multiple copies of SQLite
    linked into the same application" in SQLite's "How To Corrupt An SQLite Database File"."""
    import polars as pl
    from sqlalchemy.dialects import sqlite

    columns = [*names, "s_version"]
    # The types sqlite3 gives for the statement's casts (dates and stamps as text), told rather
    # than inferred, so polars need not scan every row of a batch first.
    schema = {n: _row_type(column_type(n) if n != "s_version" else "text") for n in columns}
    step = min(batch_size, FETCH)
    with store.reading("read opportunities") as conn:
        cursor = conn.connection.cursor()  # the driver's own: no SQLAlchemy row per deal
        try:
            cursor.execute(sql_text(stmt, sqlite.dialect()))
            parts: list[pl.DataFrame] = []
            held = 0
            while rows := cursor.fetchmany(step):
                parts.append(pl.DataFrame(rows, schema=schema, orient="row"))
                held += len(rows)
                del rows
                if held >= batch_size:
                    yield pl.concat(parts, rechunk=False)
                    parts, held = [], 0
            if parts:
                yield pl.concat(parts, rechunk=False)
        finally:
            cursor.close()


def _adbc_postgresql(conn: Any, stmt: sa.Select[Any], batch_size: int) -> Iterator[pl.DataFrame]:
    """Batches from an open ADBC connection (closed when the batches are done or dropped)."""
    from sqlalchemy.dialects import postgresql

    sql = sql_text(stmt, postgresql.dialect())  # type: ignore[no-untyped-call]
    with conn, conn.cursor() as cur:
        cur.execute(sql)
        yield from _rebatched(map(_frame, cur.fetch_record_batch()), batch_size)


def _rows(
    store: Store, stmt: sa.Select[Any], names: Sequence[str], batch_size: int
) -> Iterator[pl.DataFrame]:
    import polars as pl

    columns = [*names, "s_version"]
    with store.reading("read opportunities") as conn:
        result = conn.execution_options(yield_per=batch_size).execute(stmt)
        for part in result.partitions():
            rows = [tuple(str(v) if hasattr(v, "isoformat") else v for v in r) for r in part]
            schema = {n: _row_type(column_type(n) if n != "s_version" else "text") for n in columns}
            yield pl.DataFrame(rows, schema=schema, orient="row")


def _row_type(kind: str) -> Any:
    import polars as pl

    return {"float": pl.Float64, "int": pl.Int64, "bool": pl.Int64}.get(kind, pl.String)


def _typed(frame: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """Each column in its one frame type, whatever the driver gave."""
    import polars as pl

    exprs = []
    for name in [*names, "s_version"]:
        kind = column_type(name) if name != "s_version" else "text"
        col = pl.col(name)
        dtype = frame.schema[name]
        if kind == "text":
            expr = col.cast(pl.String)
        elif kind == "float":
            expr = col.cast(pl.Float64)
        elif kind == "int":
            expr = col.cast(pl.Int64)
        elif kind == "bool":
            expr = col.cast(pl.Int64).cast(pl.Boolean)
        elif kind == "date":
            expr = col if dtype == pl.Date else col.cast(pl.String).str.to_date("%Y-%m-%d")
        elif isinstance(dtype, pl.Datetime):
            expr = col.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        else:  # SQLite's naive UTC text, with or without its fraction
            expr = (
                col.cast(pl.String)
                .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False)
                .dt.replace_time_zone("UTC")
            )
        exprs.append(expr.alias(name))
    return frame.select(exprs)
