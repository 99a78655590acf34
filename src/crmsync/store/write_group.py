"""Several pages of a sync written in one transaction, committed every few seconds or rows.

A commit is the costly part of a small write (on SQLite a WAL sync, and now and then a checkpoint
that copies every page written since), so a sync that commits once a page spends a tenth of its
time committing. A group keeps one transaction open across pages instead: each page goes into
its own savepoint with the cursor that covers it, so whatever the group commits is a run of whole
pages and a cursor never moves past a page that was not stored. A page that fails rolls back to
its savepoint alone; the pages before it are still committed when the group ends.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import structlog
from sqlalchemy.engine import Connection, Engine, RootTransaction

from crmsync.model.records import BatchResult
from crmsync.store import batch as batches
from crmsync.store.engine import WRITE
from crmsync.store.errors import StoreError

log = structlog.get_logger("crmsync.store")

COMMIT_SECONDS = 1.0  # how long a group holds SQLite's write lock at most (plus one page)
COMMIT_ROWS = 50_000  # records and history rows written between commits at most


class WriteGroup:
    """One thread's open transaction over several `apply` calls (see the module's docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        seconds: float = COMMIT_SECONDS,
        rows: int = COMMIT_ROWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._seconds = seconds
        self._rows = rows
        self._clock = clock
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None
        self._began = 0.0
        self._written = 0
        self.commits = 0

    def apply(self, batch: batches.Batch) -> BatchResult:
        """Write one page in its own savepoint; commit the group when it is due."""
        if self._conn is None:
            conn = self._engine.connect().execution_options(**{WRITE: True})
            try:
                self._tx = conn.begin()
            except BaseException:
                conn.close()
                raise
            self._conn, self._began, self._written = conn, self._clock(), 0
        with self._conn.begin_nested():
            result = batches.apply(self._conn, batch)
        self._written += result.inserted + result.updated + result.history_rows + result.deleted
        if self._written >= self._rows or self._clock() - self._began >= self._seconds:
            self.commit()
        return result

    @property
    def pending(self) -> bool:
        """Whether pages are written but not committed yet."""
        return self._conn is not None

    def commit(self) -> None:
        """Commit the pages written so far (nothing when none are)."""
        if self._conn is None or self._tx is None:
            return
        conn, tx, self._conn, self._tx = self._conn, self._tx, None, None
        try:
            tx.commit()
            self.commits += 1
        finally:
            conn.close()


Errors = Callable[[str], AbstractContextManager[None]]  # the Store's DBAPIError -> StoreError


@contextmanager
def fewer_collections(young: int = 50_000) -> Iterator[None]:
    """Let the cyclic garbage collector run after `young` new objects instead of 700 inside the
    block: a sync's pages, history rows and summaries, and apply's plans and bookkeeping, are
    many small objects that live for a page, and each collection walks every live object (a
    tenth of a Salesforce sync's CPU, a fifth of apply's at 10k actions). Restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(max(young, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class ThreadGroups:
    """Each thread's open group, for the Store: another thread's writes are not in it."""

    def __init__(self) -> None:
        self._by_thread: dict[int, WriteGroup] = {}

    def current(self) -> WriteGroup | None:
        """This thread's open group, or None."""
        return self._by_thread.get(threading.get_ident())

    def flush(self, errors: Errors) -> None:
        """Commit this thread's pending pages: any other store call sees them, and on SQLite
        another write would otherwise wait for the lock this thread holds."""
        group = self.current()
        if group is not None and group.pending:
            with errors("commit batches"):
                group.commit()

    @contextmanager
    def grouped(self, engine: Engine, errors: Errors, seconds: float, rows: int) -> Iterator[None]:
        """This thread's writes grouped for the block; committed when it ends, also by an
        exception (the pages written whole are kept, as a commit per page kept them; a failed
        commit is then logged and the exception goes on)."""
        me = threading.get_ident()
        if me in self._by_thread:  # already grouped: the outer block commits
            yield
            return
        group = self._by_thread[me] = WriteGroup(engine, seconds=seconds, rows=rows)
        try:
            with fewer_collections():
                yield
        except BaseException:
            del self._by_thread[me]
            try:
                with errors("commit batches"):
                    group.commit()
            except StoreError as e:
                log.error("store.commit_failed", error=str(e))
            raise
        del self._by_thread[me]
        with errors("commit batches"):
            group.commit()
