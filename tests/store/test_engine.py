"""Engines: URL handling and the SQLite settings every connection gets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from crmsync.store import Store, codec
from crmsync.store.engine import execute_many, parse_url, upsert
from crmsync.store.schema import opportunities
from tests.store.builders import CONN, NOW, OBJ, opp


def test_plain_postgresql_urls_use_psycopg() -> None:
    """postgresql:// and postgres:// URLs get the psycopg 3 driver, the one installed."""
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_sqlite_pragmas(tmp_path: Path) -> None:
    """Each SQLite connection runs in WAL mode, synchronous=NORMAL, foreign keys on."""
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as s, s.reading("test") as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_in_memory_sqlite_works() -> None:
    """sqlite:// (in memory) keeps one database for the store's life, handy in tests."""
    with Store.open("sqlite://") as s:
        s.apply_batch(CONN, OBJ, opportunities=[opp()], observed_at=NOW)
        assert s.count() == 1


def test_sqlite_transactions_roll_back(tmp_path: Path) -> None:
    """SQLAlchemy, not the sqlite3 module, controls transactions: a rollback undoes DDL too."""
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as s, s.reading("test") as conn:
        with conn.begin() as tx:
            conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
            tx.rollback()
        assert not sa.inspect(conn).has_table("scratch")


# ---- execute_many binds exactly what SQLAlchemy's own per-value processing binds -----------

IST = timezone(timedelta(hours=5, minutes=30))
ROW_NAMES = (*codec.FIELD_NAMES, "key", "deleted_at", "first_seen_at", "synced_at")


def _rows() -> list[tuple[Any, ...]]:
    """Opportunity rows with awkward values: each datetime kind (UTC, other zones, zoneinfo UTC,
    equal instants in other zones), equal Decimals of other digits in a row, alike JSON objects
    both shared and apart, NULLs between equal values, and one object in many rows and columns."""
    shared = {"region": "EMEA", "n": [1, 2.5, None, "ü"], "amount": "1.50"}
    noon_ist = NOW.astimezone(IST)
    kinds: list[dict[str, Any]] = [
        {"modified_at": NOW, "amount": Decimal("1.0"), "custom": shared, "owner_active": True},
        {"modified_at": noon_ist, "amount": Decimal("1.00"), "custom": shared},
        {"modified_at": NOW.replace(tzinfo=ZoneInfo("UTC")), "amount": Decimal("1E+3")},
        {"modified_at": datetime(1, 1, 1, tzinfo=UTC), "amount": Decimal("-0.000")},
        {"modified_at": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)},
        {"modified_at": datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin"))},
        {"last_activity_at": NOW, "created_at": NOW, "close_date": date(5, 1, 2)},
        {"last_activity_at": noon_ist, "created_at": NOW, "owner_active": False},
        {"custom": dict(shared), "probability": 50, "budget_confirmed": True, "deleted": True},
        {"custom": {}, "probability": 33.333333333333336, "close_date": None, "amount": None},
        {"is_closed": True, "is_won": True, "stage_entered_at": noon_ist, "owner_active": None},
    ]
    rows = []
    for i, changes in enumerate(kinds * 2):  # each kind after a row of every other kind
        values = list(codec.values_of(opp(f"006X{i:02}"), CONN))
        for name, value in changes.items():
            values[codec.FIELD_NAMES.index(name)] = value
        deleted = values[codec.FIELD_NAMES.index("deleted")]
        rows.append((*values, f"{CONN}:006X{i:02}", noon_ist if deleted else None, NOW, NOW))
    return rows


def _bound(store: Store, write: Callable[[Connection], None]) -> tuple[list[str], list[Any]]:
    """The SQL and the parameters the driver was given during `write` (rolled back after)."""
    seen: tuple[list[str], list[Any]] = ([], [])

    def on_execute(*args: Any) -> None:
        _conn, _cursor, statement, parameters, _context, executemany = args
        seen[0].append(statement)
        seen[1].extend(parameters if executemany else [parameters])

    with store.writing("test") as conn:
        event.listen(conn, "before_cursor_execute", on_execute)
        try:
            write(conn)
        finally:
            event.remove(conn, "before_cursor_execute", on_execute)
        conn.rollback()
    return seen


def _exact(params: list[Any]) -> list[Any]:
    """Parameters compared by type and repr, so that 1.0 is not 1.00 and True is not 1; a
    driver's JSON wrapper (psycopg's Jsonb) by the object it wraps and its dumps function."""

    def one(value: Any) -> Any:
        if hasattr(value, "obj"):
            return (type(value), repr(value.obj), getattr(value, "dumps", None))
        return (type(value), repr(value))

    if params and isinstance(params[0], dict):
        return [{name: one(v) for name, v in p.items()} for p in params]
    return [tuple(map(one, p)) for p in params]


@pytest.mark.parametrize("order", ["table", "reversed"])
def test_execute_many_binds_what_sqlalchemy_binds(store: Store, order: str) -> None:
    """execute_many's bound values are, value for value, those SQLAlchemy's own statement
    execution binds for the same rows (its processors called on every value), on both backends:
    converting by column, skipping NULLs and converting repeated objects once change nothing."""
    rows = _rows()
    names = ROW_NAMES if order == "table" else ROW_NAMES[::-1]
    if order == "reversed":
        rows = [row[::-1] for row in rows]
    update = [name for name in ROW_NAMES if name not in ("key", "first_seen_at")]

    backend: list[str] = []

    def ours(conn: Connection) -> None:
        backend.append(conn.dialect.name)
        stmt = upsert(conn.dialect.name, opportunities, ["key"], update)
        assert execute_many(conn, stmt, names, rows) == len(rows)

    def sqlalchemy(conn: Connection) -> None:
        stmt = upsert(conn.dialect.name, opportunities, ["key"], update)
        for row in rows:
            conn.execute(stmt, dict(zip(names, row, strict=True)))

    our_sql, our_params = _bound(store, ours)
    their_sql, their_params = _bound(store, sqlalchemy)
    assert our_sql == their_sql[:1]
    assert set(their_sql) == set(our_sql)
    assert len(our_params) == len(rows)
    assert _exact(our_params) == _exact(their_params)
    # the rows had something to convert: datetimes, Decimals, bools and JSON are not bound as is
    bound = {type(v) for p in our_params for v in (p.values() if isinstance(p, dict) else p)}
    assert dict not in bound
    if backend == ["sqlite"]:
        assert not bound & {Decimal, bool, datetime, date}


def test_execute_many_refuses_a_naive_datetime_as_sqlalchemy_does(store: Store) -> None:
    """A naive datetime among aware ones is refused, not guessed at, in any row."""
    rows = _rows()
    at = ROW_NAMES.index("created_at")
    rows[5] = (*rows[5][:at], datetime(2026, 1, 1), *rows[5][at + 1 :])
    with pytest.raises(ValueError, match="naive"), store.writing("test") as conn:
        stmt = upsert(conn.dialect.name, opportunities, ["key"], ["name"])
        execute_many(conn, stmt, ROW_NAMES, rows)
    assert store.count() == 0
