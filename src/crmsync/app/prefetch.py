"""A connector's pages fetched one ahead in a background thread, while the sync stores the last.

The wait for the CRM's answer releases the GIL (so does SQLite's own work), so fetching page N+1
while page N is written takes most of the fetch off the sync's time. Whatever the pages' iterator
raises (a QuotaStop, a CRM error, Ctrl-C delivered there, a crash) is raised again by `next`, the
same exception, after every page fetched before it: the caller sees the order it saw without
prefetching. The thread runs in a copy of the caller's context, so its log events carry the run's
bound context. At most `depth` pages wait in the queue: memory stays a few pages.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL = 0.2  # seconds between looks at the stop flag while the queue is full or empty
_PAGE, _END, _ERROR = 0, 1, 2


class Prefetch(Generic[T]):
    """Iterate `items` in a thread, `depth` ahead; `close` stops it (see the module docstring)."""

    def __init__(self, items: Iterable[T], *, depth: int = 1, name: str = "prefetch") -> None:
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run, iter(items)), name=name, daemon=True
        )
        self._thread.start()

    def _run(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put((_PAGE, item)):
                    break
            else:
                self._put((_END, None))
        except BaseException as e:  # handed to the caller's thread, which raises it
            self._put((_ERROR, e))
        finally:
            if self._stop.is_set():
                close = getattr(items, "close", None)  # a generator: run its finally blocks
                if close is not None:
                    close()

    def _put(self, message: tuple[int, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        return self

    def ready(self) -> bool:
        """Whether `next` answers at once (an item, the end or an error is waiting)."""
        return self._finished or not self._queue.empty()

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        while True:
            try:
                kind, value = self._queue.get(timeout=_POLL)
                break
            except queue.Empty:
                continue
        if kind == _PAGE:
            return value  # type: ignore[return-value]
        self._finished = True
        self._thread.join()
        if kind == _ERROR:
            assert isinstance(value, BaseException)
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop fetching. The thread ends after the call it is in (not waited for here: Ctrl-C
        must not wait for a slow CRM); nothing it fetches after this is used."""
        self._finished = True
        self._stop.set()
        while True:  # free a producer blocked on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
