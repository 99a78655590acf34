"""Migrations: packaged, idempotent, and producing exactly the tables the code uses."""

from __future__ import annotations

import warnings
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from crmsync.store import Store
from crmsync.store.migrate import alembic_config
from crmsync.store.schema import metadata, owned
from tests.store.builders import CONN, NOW, OBJ, opp


def _version(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_open_twice_is_idempotent(store_url: str) -> None:
    """Opening an existing store migrates nothing and keeps its data."""
    with Store.open(store_url) as first:
        first.apply_batch(CONN, OBJ, opportunities=[opp()], observed_at=NOW)
    with Store.open(store_url) as second:
        assert second.count() == 1
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    assert _version(store_url) == head  # every migration applied, none twice


def test_schema_matches_the_code(store: Store, store_url: str) -> None:
    """Autogenerate finds no difference between the migrated database and schema.py."""
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn, warnings.catch_warnings():
            # SQLite's reflection skips the expression index; the rest is compared.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection")
            warnings.filterwarnings("ignore", "autogenerate skipping")
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": owned}
            )
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_sqlite_folder_is_created(tmp_path: Path) -> None:
    """Opening a SQLite file in a folder that does not exist yet creates the folder."""
    path = tmp_path / "a" / "b" / "store.db"
    with Store.open(f"sqlite:///{path}") as s:
        assert s.count() == 0
    assert path.is_file()


def _indexes(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection")
            return {str(ix["name"]) for ix in sa.inspect(conn).get_indexes(table)}
    finally:
        engine.dispose()


def _migrate(url: str, target: str, down: bool = False) -> None:
    from alembic import command

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(config, target)
    finally:
        engine.dispose()


def test_0010_drops_the_covered_indexes_and_puts_them_back_on_downgrade(store_url: str) -> None:
    """0010 drops the two indexes another one covers; downgrading to 0009 recreates them and
    upgrading again drops them again, data kept."""
    covered = {"ix_field_history_key_field_changed_at", "ix_opportunities_connection"}
    with Store.open(store_url) as s:
        s.apply_batch(CONN, OBJ, opportunities=[opp()], observed_at=NOW)
    both = _indexes(store_url, "field_history") | _indexes(store_url, "opportunities")
    assert not covered & both
    assert "ix_opportunities_connection_key" in both
    _migrate(store_url, "0009", down=True)
    both = _indexes(store_url, "field_history") | _indexes(store_url, "opportunities")
    assert covered <= both
    _migrate(store_url, "head")
    both = _indexes(store_url, "field_history") | _indexes(store_url, "opportunities")
    assert not covered & both
    with Store.open(store_url) as s:
        assert s.count() == 1 and len(s.history(opp().key)) > 0


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_0012_installs_the_job_queue_on_postgresql_only(store_url: str) -> None:
    """0012 adds fences, marks and quota budgets on both backends, and Procrastinate's queue on
    PostgreSQL; a downgrade to 0011 removes them all, and upgrading puts them back."""
    ours = {"fences", "schedule_marks", "quota_budgets"}
    queue = {"procrastinate_jobs", "procrastinate_workers", "procrastinate_events"}
    Store.open(store_url).close()
    tables = _tables(store_url)
    assert ours <= tables
    on_pg = store_url.startswith("postgresql")
    assert (queue <= tables) if on_pg else not (queue & tables)
    _migrate(store_url, "0011", down=True)
    assert not (ours | queue) & _tables(store_url)
    _migrate(store_url, "head")
    assert ours <= _tables(store_url)
    assert (queue <= _tables(store_url)) == on_pg
