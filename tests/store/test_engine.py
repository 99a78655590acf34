"""Engines: URL handling and the SQLite settings every connection gets."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from crmsync.store import Store
from crmsync.store.engine import parse_url
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
