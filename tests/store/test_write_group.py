"""Grouped writes: several pages in one transaction, each whole with its cursor, on both stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from crmsync.model.records import Cursor, HistoryRow
from crmsync.store import Store
from tests.store.builders import CONN, NOW, OBJ, opp

NEVER = 1e9  # seconds: a group that commits only when its block ends


def _page(store: Store, n: int) -> None:
    store.apply_batch(
        CONN,
        OBJ,
        opportunities=[opp(f"{n}-{i}") for i in range(3)],
        cursor=Cursor(f"c{n}", ()),
        observed_at=NOW,
    )


def test_pages_of_a_group_commit_together_when_it_ends(store: Store, store_url: str) -> None:
    """Inside the block another connection sees nothing written; after it, every page and the
    last page's cursor."""
    with Store.open(store_url) as other:
        with store.grouped_writes(seconds=NEVER):
            _page(store, 1)
            _page(store, 2)
            assert other.count(CONN) == 0 and other.get_cursor(CONN, OBJ) is None
        assert other.count(CONN) == 6 and other.get_cursor(CONN, OBJ) == Cursor("c2", ())


def test_a_group_commits_when_rows_are_due(store: Store, store_url: str) -> None:
    """With `rows=3`, each page of three records is committed as it is written."""
    with Store.open(store_url) as other, store.grouped_writes(seconds=NEVER, rows=3):
        _page(store, 1)
        assert other.count(CONN) == 3 and other.get_cursor(CONN, OBJ) == Cursor("c1", ())
        _page(store, 2)
        assert other.count(CONN) == 6 and other.get_cursor(CONN, OBJ) == Cursor("c2", ())


def test_another_call_from_the_thread_commits_the_pages_first(store: Store) -> None:
    """A read (or any other write) from the grouping thread sees the pages: they are committed
    first, so on SQLite it never waits for the lock its own group holds."""
    with store.grouped_writes(seconds=NEVER):
        _page(store, 1)
        assert store.get_cursor(CONN, OBJ) == Cursor("c1", ())
        store.reset_cursor(CONN, OBJ)  # a write: would wait for the lock without the commit
        _page(store, 2)
    assert store.count(CONN) == 6 and store.get_cursor(CONN, OBJ) == Cursor("c2", ())


def test_an_exception_in_the_block_keeps_the_pages_written_before_it(store: Store) -> None:
    """What ends the block early (a CRM error, Ctrl-C) is raised, after the whole pages written
    before it are committed with their cursor, as a commit per page kept them."""
    with pytest.raises(KeyboardInterrupt), store.grouped_writes(seconds=NEVER):
        _page(store, 1)
        raise KeyboardInterrupt
    assert store.count(CONN) == 3 and store.get_cursor(CONN, OBJ) == Cursor("c1", ())


def test_a_failing_page_is_rolled_back_alone(store: Store) -> None:
    """A page refused half-way (history for another connection, checked after its records are
    read) leaves nothing of itself; the pages before it commit with their cursor."""
    bad = HistoryRow("other:1", "stage", None, "x", NOW - timedelta(days=1), "crm")
    with pytest.raises(ValueError, match="given in a batch"), store.grouped_writes(seconds=NEVER):
        _page(store, 1)
        store.apply_batch(
            CONN,
            OBJ,
            opportunities=[opp("2-0")],
            history=[bad],
            cursor=Cursor("c2", ()),
            observed_at=NOW,
        )
    assert store.count(CONN) == 3 and store.get_cursor(CONN, OBJ) == Cursor("c1", ())
    assert store.get(f"{CONN}:2-0") is None


def test_a_store_failure_inside_a_page_keeps_the_pages_before_it(store: Store) -> None:
    """A page that fails in its last statement, its records already written (a cursor holding
    a value no JSON column takes), rolls back to its savepoint; the earlier pages still commit."""
    with pytest.raises((sa.exc.StatementError, TypeError)), store.grouped_writes(seconds=NEVER):
        _page(store, 1)
        store.apply_batch(
            CONN,
            OBJ,
            opportunities=[opp("2-0")],
            cursor=Cursor("c2", (object(),)),  # type: ignore[arg-type]
            observed_at=NOW,
        )
    assert store.count(CONN) == 3 and store.get_cursor(CONN, OBJ) == Cursor("c1", ())
