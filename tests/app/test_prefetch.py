"""Prefetch: a connector's pages fetched one ahead in a thread, errors surfacing in order."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator

import pytest

from crmsync.app.prefetch import Prefetch
from crmsync.errors import QuotaStop

RUN = contextvars.ContextVar("RUN", default="none")


def test_items_come_in_order_then_the_end() -> None:
    """Every item, in order, then StopIteration (again on a further next)."""
    prefetched = Prefetch(iter(range(5)))
    assert list(prefetched) == [0, 1, 2, 3, 4]
    with pytest.raises(StopIteration):
        next(prefetched)


@pytest.mark.parametrize("error", [QuotaStop("daily limit"), KeyboardInterrupt(), OSError("x")])
def test_an_error_surfaces_after_the_items_before_it(error: BaseException) -> None:
    """What the iterator raises is raised by `next`, the same object, after the items fetched
    before it: the caller stores those first, as without prefetching."""

    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise error

    prefetched = Prefetch(pages())
    assert next(prefetched) == 1 and next(prefetched) == 2
    with pytest.raises(type(error)) as raised:
        next(prefetched)
    assert raised.value is error


def test_it_fetches_at_most_depth_ahead() -> None:
    """With depth 1, at most two items beyond those taken are fetched (one queued, one held)."""
    fetched: list[int] = []
    blocked = threading.Event()

    def pages() -> Iterator[int]:
        for i in range(100):
            fetched.append(i)
            if len(fetched) == 3:
                blocked.set()
            yield i

    with Prefetch(pages(), depth=1) as prefetched:
        assert next(prefetched) == 0
        assert blocked.wait(5)
        assert len(fetched) <= 3


def test_close_stops_the_thread_and_runs_the_generator_cleanup() -> None:
    """Leaving early (an error while storing) stops fetching; the generator's finally runs."""
    cleaned = threading.Event()

    def pages() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            cleaned.set()

    with Prefetch(pages()) as prefetched:
        next(prefetched)
    assert cleaned.wait(5)


def test_the_thread_runs_in_the_callers_context() -> None:
    """Log events of the connector carry the run's bound context (contextvars)."""
    seen: list[str] = []

    def pages() -> Iterator[int]:
        seen.append(RUN.get())
        yield 1

    token = RUN.set("run-7")
    try:
        assert list(Prefetch(pages())) == [1]
    finally:
        RUN.reset(token)
    assert seen == ["run-7"]
