"""The two store backends every store-backed test runs on: a SQLite file, a PostgreSQL schema.

One copy for the whole suite (the root conftest's `store_url`, `store` and `pg_url` fixtures).
PostgreSQL must be up (CI starts it): when it is down its tests fail, they are not skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa

PG_URL = os.environ.get("CRMSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _admin_dsn() -> str:
    return sa.make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def pg_schema(password: str | None = None) -> Iterator[str]:
    """A URL to a fresh PostgreSQL schema (with `password` in it, if given), dropped after."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        if password is not None:
            url = url.set(password=password)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
