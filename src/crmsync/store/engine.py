"""Engines for the two supported backends, set up so that both behave alike."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Dialect, Engine
from sqlalchemy.pool import StaticPool

from crmsync.store.codec import dumps
from crmsync.store.errors import StoreError, StoreMissing, redact_url

BACKENDS = ("sqlite", "postgresql")
URL_HINT = "use sqlite:///path/to/store.db or postgresql+psycopg://user@host/database"
# Connection execution option asking SQLite for the write lock when the transaction begins.
WRITE = "crmsync_write"


def _missing_file(parsed: URL, url: str) -> None:
    """Refuse a SQLite store file that does not exist (a command that only reads would
    otherwise answer "nothing synced" for a mistyped path, and leave an empty file behind)."""
    database = parsed.database or ""
    uri = str(parsed.query.get("uri", "")).lower() in ("true", "1") or database.startswith("file:")
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or uri:
        return  # PostgreSQL, memory, or a URI form sqlite3 resolves itself
    try:
        found = Path(database).exists()
    except OSError as e:  # a name too long for the file system, say: the open's own one line
        raise StoreError(f"cannot open store {redact_url(url)}: {e.strerror or e}") from None
    if not found:
        raise StoreMissing(
            f"store {redact_url(url)}: no such file (`crmsync sync` creates it; "
            "or check store.url in the config)"
        )


def parse_url(url: str, *, must_exist: bool = False) -> URL:
    """The URL as SQLAlchemy sees it, with the psycopg driver filled in for plain PostgreSQL;
    `must_exist`: a SQLite file that does not exist is `StoreMissing`."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        message = f"cannot open store {redact_url(url)}: not a database URL; {URL_HINT}"
        raise StoreError(message) from None
    backend = parsed.get_backend_name()
    if backend == "postgres" or parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend not in BACKENDS:
        raise StoreError(
            f"cannot open store {redact_url(url)}: unsupported database {backend!r}; {URL_HINT}"
        )
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database or "").expanduser()))
    if must_exist:
        _missing_file(parsed, url)
    return parsed


IDLE_IN_TX_MS = 60_000  # PostgreSQL: a transaction left idle this long is ended by the server


def create_engine(url: URL) -> Engine:
    """An engine for a parsed URL; for a SQLite file, the folder is created first."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    engine = sa.create_engine(
        url, json_serializer=dumps, hide_parameters=True, connect_args=connect_args
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # crmsync never waits on a CRM inside a transaction (a sync commits before it waits for
        # the next page), so a session idle in one is a paused or partitioned worker: the server
        # ends it, and the row locks it holds stop blocking the worker that took its job over.
        dbapi_connection.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TX_MS}")
        dbapi_connection.commit()

    return engine


def _sqlite_engine(url: URL) -> Engine:
    """A SQLite engine in WAL mode whose transactions SQLAlchemy begins (see _on_begin)."""
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        engine = sa.create_engine(
            url,
            json_serializer=dumps,
            hide_parameters=True,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
    else:
        Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, json_serializer=dumps, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, decides when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the lock up front, so what it read cannot change before it writes.
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# Bound parameters per IN list: under SQLite's oldest limit (999), fine for PostgreSQL too.
CHUNK = 900


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """The items in slices small enough for one IN list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def upsert(dialect: str, table: sa.Table, keys: Sequence[str], update: Sequence[str]) -> sa.Insert:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET the update columns, for either backend.
    The same statement object each time, so that `execute_many` compiles it once."""
    return _upsert(dialect, table, tuple(keys), tuple(update))


@lru_cache(maxsize=128)
def _upsert(
    dialect: str, table: sa.Table, keys: tuple[str, ...], update: tuple[str, ...]
) -> sa.Insert:
    stmt = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={name: stmt.excluded[name] for name in update}
    )


@lru_cache(maxsize=128)
def insert_ignoring_duplicates(dialect: str, table: sa.Table) -> sa.Insert:
    """INSERT ... ON CONFLICT DO NOTHING (any unique index), for either backend (one object
    per table, as `upsert`)."""
    stmt = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    return stmt.on_conflict_do_nothing()


def execute_many(
    conn: Connection, stmt: sa.Insert, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """Run an INSERT for many rows (values in `names` order) through the driver's executemany.

    Each value goes through its column's own bind processing, as SQLAlchemy would do, without
    SQLAlchemy's per-row bookkeeping (this is most of a batch's cost). NULLs are passed as is,
    and a value that is the same object as the previous row's is converted once. The rowcount
    is the driver's, which counts rows actually written on both backends; it is returned.
    """
    if not rows:
        return 0
    dialect = conn.dialect
    sql, positional, order, pick, processors = _compiled(stmt, dialect, tuple(names))
    converters = [(j, processor, [_NOTHING, None]) for j, processor in processors]
    params: list[Any] = []
    for row in rows:
        values = list(row if pick is None else pick(row))
        for j, processor, last in converters:
            value = values[j]
            if value is None:
                continue
            if value is not last[0]:
                last[0], last[1] = value, processor(value)
            values[j] = last[1]
        params.append(tuple(values) if positional else dict(zip(order, values, strict=True)))
    result = conn.exec_driver_sql(sql, params)
    return int(result.rowcount)


Compiled = tuple[str, bool, list[str], Any, list[tuple[int, Any]]]
_COMPILED: dict[tuple[sa.Insert, Dialect, tuple[str, ...]], Compiled] = {}


def _compiled(stmt: sa.Insert, dialect: Dialect, names: tuple[str, ...]) -> Compiled:
    """The statement's SQL, parameter order and bind processors, made once per statement,
    dialect and names (compiling costs more than a page's executemany of a hundred rows).
    Statements are kept alive by the cache, so its keys are never reused; it is bounded."""
    cache_key = (stmt, dialect, names)
    found = _COMPILED.get(cache_key)
    if found is not None:
        return found
    compiled = stmt.compile(dialect=dialect, column_keys=list(names))
    order = list(compiled.positiontup or ()) if compiled.positional else list(names)
    at = [names.index(name) for name in order]
    pick = None if at == list(range(len(names))) else itemgetter(*at)
    columns = stmt.table.c
    processors = [
        (j, processor)
        for j, name in enumerate(order)
        if (processor := columns[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    if len(_COMPILED) >= 256:
        _COMPILED.clear()
    found = _COMPILED[cache_key] = (str(compiled), compiled.positional, order, pick, processors)
    return found


_NOTHING = object()
