"""The `store` fixture: every contract test runs on a SQLite file and on a PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from crmsync.store import Store
from tests.store.builders import PG_URL


def _admin_dsn() -> str:
    return sa.make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema dropped after.

    PostgreSQL must be up (CI starts it): when it is down its tests fail, they are not skipped.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'crmsync.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, migrated store on each backend, closed afterwards."""
    s = Store.open(store_url)
    try:
        yield s
    finally:
        s.close()
