"""Fixtures of the service tests: a PostgreSQL schema of their own, reachable by URL from a
child process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy

from tests.conftest import PG_URL

# PostgreSQL here trusts local connections, so any password is accepted: one stands in for the
# real secret a production store URL would carry.
STORE_PASSWORD = "Pg-S3cret-4-crmsync-Tests"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL (with a password in it) to a fresh PostgreSQL schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    url = PG_URL.replace("postgres@", f"postgres:{STORE_PASSWORD}@")
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
