"""The store's errors (a mistake, or a database out of reach for now), and the helpers that keep
their messages to one safe line."""

from __future__ import annotations

import re
import sqlite3

import psycopg

from crmsync import logs
from crmsync.errors import InvalidInput

_MAX_REASON = 300


class StoreError(InvalidInput):
    """The store cannot be opened or cannot do what was asked; the message names the URL.

    As such a mistake to fix (a URL, a missing database or role, a refused value): exit 2.
    """


class StoreMissing(StoreError):
    """A SQLite store file that does not exist, opened by a command that only reads (a new
    store is made by the sync, not by a typo in its path)."""


class StoreUnavailable(StoreError):
    """The store's database cannot be reached (refused, timed out, dropped connections, server
    starting or shutting down, too many clients, a SQLite file locked by another writer): the
    same request may work later, unchanged."""

    exit_code = 6
    transient = True


# PostgreSQL SQLSTATEs of a server that is there but not serving for now.
_UNREACHABLE_STATES = ("57P01", "57P02", "57P03", "53300")
# libpq's words for the same when it has no SQLSTATE (failures while connecting).
_UNREACHABLE_FATALS = (
    "starting up",
    "shutting down",
    "in recovery",
    "too many clients",
    "terminating connection",
)
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def unreachable(error: BaseException) -> bool:
    """Whether a database error means the database is out of reach for now (not a mistake)."""
    if getattr(error, "connection_invalidated", False):  # SQLAlchemy saw the connection drop
        return True
    orig = getattr(error, "orig", None) or error  # the driver's error, if SQLAlchemy wrapped one
    text = str(orig)
    if isinstance(orig, psycopg.Error):
        if not isinstance(orig, psycopg.OperationalError):
            return False
        state = getattr(orig, "sqlstate", None)
        if state:
            return str(state).startswith("08") or state in _UNREACHABLE_STATES
        # no SQLSTATE: failed while connecting; "FATAL:" is the server answering, which means
        # a mistake (no such database or role, a refused password) unless it says "not now"
        if "FATAL:" in text:
            return any(words in text for words in _UNREACHABLE_FATALS)
        return True  # refused, timed out, name not resolved, connection closed
    if isinstance(orig, sqlite3.OperationalError):
        return any(words in text for words in _SQLITE_BUSY)
    return False


def store_error(message: str, error: BaseException) -> StoreError:
    """The StoreError for a database failure: StoreUnavailable when the database is out of
    reach, a plain StoreError otherwise. `message` is already one safe line."""
    if unreachable(error):
        return StoreUnavailable(f"{message} (the database cannot be reached: retry later)")
    return StoreError(message)


def said_error(message: str, said: str) -> StoreError:
    """`store_error` for a failure known only by its words (the SQLite helper process's)."""
    if any(words in said for words in _SQLITE_BUSY):
        return StoreUnavailable(f"{message} (the database cannot be reached: retry later)")
    return StoreError(message)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for messages and logs."""
    return logs.redact_url(url)


_QUOTED_TEXT = re.compile(r" with text '.*'$", re.DOTALL)


def one_line(error: BaseException, secret: str | None = None) -> str:
    """The database's reason for an error, on one short line, without the given secret.

    PostgreSQL's primary message is used alone: its DETAIL lines can quote a whole row.
    """
    orig = getattr(error, "orig", None) or error  # the driver's error, if SQLAlchemy wrapped one
    primary = getattr(getattr(orig, "diag", None), "message_primary", None)
    text = " ".join(str(primary or orig).split())
    # sqlite3 quotes the bytes it could not decode ("... column 'x' with text '...'"): a
    # stored value, not the reason
    text = _QUOTED_TEXT.sub("", text)
    if secret:
        text = text.replace(secret, "***")
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 3] + "..."
    return text or type(orig).__name__
