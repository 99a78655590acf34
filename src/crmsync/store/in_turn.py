"""Several reads of one result (runs of keys), made a few at a time and handed on in order."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

AHEAD = 2  # frames a read may hold before they are handed on


def in_order(
    readers: list[Callable[[], Iterator[pl.DataFrame]]],
    *,
    at_once: int = 2,
    later: Callable[[], None] | None = None,
) -> Iterator[pl.DataFrame]:
    """The frames of several reads, handed on read by read in the order given, `at_once` of
    them made at the same time: a thread per place takes reads in turn (the first the 1st, 3rd,
    5th... of two), so a helper reads the next run of keys while this process decides the last.
    A read runs at most a few frames ahead of the one handed on (`AHEAD`), so memory is the same
    at any size. With `later`, the places but the first start once it returns (another read
    is under way until then). A read's failure is raised where its frames would have come;
    stopping early stops them all."""
    if len(readers) == 1 or at_once < 2:
        for make in readers:
            yield from make()
        return
    stop = threading.Event()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=AHEAD) for _ in readers]
    done = object()

    def drive(place: int) -> None:
        if place and later is not None:
            later()
        for i in range(place, len(readers), at_once):
            if not _drive(readers[i], queues[i]):
                return

    def _drive(make: Callable[[], Iterator[pl.DataFrame]], out: queue.Queue[Any]) -> bool:
        frames = make()
        try:
            for frame in frames:
                while not stop.is_set():
                    with contextlib.suppress(queue.Full):
                        out.put(frame, timeout=0.05)
                        break
                if stop.is_set():
                    return False
            out.put(done)
            return True
        except BaseException as e:  # handed to the reader, in its place
            out.put(e)
            return False
        finally:
            if isinstance(frames, Generator):
                frames.close()  # an abandoned read stops its helper

    threads = [
        threading.Thread(target=drive, args=(place,), name="sqlite-arrow-read", daemon=True)
        for place in range(min(at_once, len(readers)))
    ]
    for t in threads:
        t.start()
    try:
        for q in queues:
            while (item := q.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
    finally:
        stop.set()
        for t in threads:
            while t.is_alive():  # a driver may wait to put into any of its queues
                for q in queues:
                    with contextlib.suppress(queue.Empty):
                        q.get_nowait()
                t.join(timeout=0.05)
