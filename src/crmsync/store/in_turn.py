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
    at any size. Each read is its own snapshot of the store: a write committed meanwhile is seen
    by the later reads only (a deal is read whole, with its summary, in one of them). With
    `later`, the places but the first start once it returns (another read is under way until
    then). A read's failure, or `later`'s, is raised where its frames would have come. Stopping
    early stops every read; a place still waiting on `later` is not waited for, and reads
    nothing once it returns."""
    if len(readers) == 1 or at_once < 2:
        for make in readers:
            yield from make()
        return
    stop = threading.Event()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=AHEAD) for _ in readers]
    done = object()
    waiting: set[int] = set()  # places inside `later`

    def put(out: queue.Queue[Any], item: object) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                out.put(item, timeout=0.05)
                return True
        return False

    def drive(place: int) -> None:
        runs = range(place, len(readers), at_once)
        if place and later is not None:
            waiting.add(place)
            try:
                later()
            except BaseException as e:  # in place of this place's first frames
                put(queues[runs[0]], e)
                return
            finally:
                waiting.discard(place)
        for i in runs:
            if stop.is_set() or not read(readers[i], queues[i]):
                return

    def read(make: Callable[[], Iterator[pl.DataFrame]], out: queue.Queue[Any]) -> bool:
        frames = None
        try:
            frames = make()
            for frame in frames:
                if not put(out, frame):
                    return False
            return put(out, done)
        except BaseException as e:  # handed to the reader, in its place
            put(out, e)
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
        for place, t in enumerate(threads):
            while t.is_alive() and place not in waiting:  # it may wait to put into a queue
                for q in queues:
                    with contextlib.suppress(queue.Empty):
                        q.get_nowait()
                t.join(timeout=0.05)
