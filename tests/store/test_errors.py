"""A store that cannot be opened gives one line naming the URL, never its password."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmsync.errors import CrmsyncError, InvalidInput
from crmsync.store import Store, StoreError, StoreUnavailable
from crmsync.store.errors import redact_url
from tests.stores import PG_URL


def _open_error(url: str) -> str:
    with pytest.raises(StoreError) as caught:
        Store.open(url)
    message = str(caught.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def test_store_error_is_a_crmsync_error() -> None:
    """The CLI's CrmsyncError handler turns StoreError into one line and exit code 2, and a
    store out of reach (StoreUnavailable, still a StoreError) into exit code 6."""
    assert issubclass(StoreError, InvalidInput) and issubclass(StoreError, CrmsyncError)
    assert StoreError.exit_code == 2 and not StoreError.transient
    assert issubclass(StoreUnavailable, StoreError)
    assert StoreUnavailable.exit_code == 6 and StoreUnavailable.transient


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bob:pa55@host/db", "postgresql://bob:***@host/db"),
        ("postgresql+psycopg://bob:p%40ss@h:5/d?x=1", "postgresql+psycopg://bob:***@h:5/d?x=1"),
        ("postgresql://bob:p@ss@host/db", "postgresql://bob:***@host/db"),
        ("postgresql://bob:pa?ss@host/db", "postgresql://bob:***@host/db"),
        ("postgresql://bob:pa/ss@host/db", "postgresql://bob:***@host/db"),
        (
            "postgresql://bob:a/b?c@d@host/db?sslmode=require",
            "postgresql://bob:***@host/db?sslmode=require",
        ),
        (
            "url postgresql://bob:p/w@h/db, owner bob@acme.com",
            "url postgresql://bob:***@h/db, owner bob@acme.com",
        ),
        ("postgresql://h/db?user=bob&password=pa55", "postgresql://h/db?user=bob&password=***"),
        ("postgresql://bob@h/db", "postgresql://bob@h/db"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
        ("bob:pa55@host", "bob:pa55@host"),  # not a URL: nothing recognisable to hide
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """Passwords in URLs are replaced by ***; the rest stays readable."""
    assert redact_url(url) == shown


def test_not_a_url() -> None:
    """Something that is not a URL says so and shows what a URL looks like."""
    message = _open_error("just some words")
    assert "not a database URL" in message and "sqlite:///" in message


def test_unsupported_database() -> None:
    """An unsupported scheme names the database, and hides the password."""
    message = _open_error("mysql://root:hunter2@localhost/crm")
    assert "unsupported database 'mysql'" in message
    assert "hunter2" not in message and "root:***@" in message


def test_unreachable_postgresql_hides_password() -> None:
    """An unreachable server fails fast with the driver's reason, password hidden."""
    message = _open_error("postgresql+psycopg://alice:s3cr3t@127.0.0.1:1/crm")
    assert message.startswith("cannot open store postgresql+psycopg://alice:***@127.0.0.1:1/crm")
    assert "s3cr3t" not in message


@pytest.mark.parametrize("password", ["pa?ss", "pa/ss", "pa/ss?w"])
def test_unreachable_postgresql_hides_a_password_holding_url_characters(password: str) -> None:
    """A password holding '?' or '/' (unescaped) is hidden whole, not in part."""
    message = _open_error(f"postgresql+psycopg://alice:{password}@127.0.0.1:1/crm")
    assert message.startswith("cannot open store postgresql+psycopg://alice:***@127.0.0.1:1/crm: ")
    assert password not in message


def test_missing_postgresql_database() -> None:
    """A database that does not exist is reported in one line."""
    message = _open_error(PG_URL.rsplit("/", 1)[0] + "/crmsync_no_such_db")
    assert "crmsync_no_such_db" in message


def test_unwritable_sqlite_path(tmp_path: Path) -> None:
    """A SQLite path whose folder cannot be created is reported in one line."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    message = _open_error(f"sqlite:///{blocker / 'sub' / 'store.db'}")
    assert str(blocker) in message


def _open_failure(url: str) -> StoreError:
    with pytest.raises(StoreError) as caught:
        Store.open(url)
    return caught.value


def test_an_unreachable_server_is_transient() -> None:
    """A server that does not answer is StoreUnavailable: retry later (exit 6), not exit 2."""
    error = _open_failure("postgresql+psycopg://alice:s3cr3t@127.0.0.1:1/crm")
    assert isinstance(error, StoreUnavailable)
    assert error.transient and error.exit_code == 6
    assert "s3cr3t" not in str(error) and "retry later" in str(error)


@pytest.mark.parametrize(
    "url",
    ["just some words", "mysql://root:hunter2@localhost/crm", PG_URL.rsplit("/", 1)[0] + "/nodb"],
)
def test_a_mistake_in_the_url_stays_a_configuration_error(url: str) -> None:
    """A malformed URL, an unsupported database or a missing database: exit 2, not transient."""
    error = _open_failure(url)
    assert not isinstance(error, StoreUnavailable)
    assert error.exit_code == 2 and not error.transient


def test_a_locked_sqlite_file_is_transient(tmp_path: Path) -> None:
    """Another writer holding a SQLite file's lock past the wait: StoreUnavailable."""
    path = tmp_path / "store.db"
    with Store.open(f"sqlite:///{path}") as store:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailable, match="database is locked"):
                store.close_abandoned_runs(datetime.now(UTC), "x")
        finally:
            other.close()
