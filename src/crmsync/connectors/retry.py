"""Retrying CRM calls: 429, 5xx and timeouts, with backoff and jitter, honouring Retry-After.

Only retriable failures are retried; a connector turns its client's exceptions into `Retriable`
(with the server's Retry-After when given) before this policy sees them. Listeners (the service's
metrics) hear of each rate-limited answer and each retry, held weakly so they go with their owner.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from crmsync.errors import CrmUnavailable, StopRequested

T = TypeVar("T")
log = structlog.get_logger("crmsync.retry")


class Retriable(Exception):
    """A failure worth trying again: rate limited, CRM unavailable, timed out, dropped.

    `rate_limited` marks the CRM's "too many requests" answers (HTTP 429, Salesforce's
    concurrent-request limit), which the metrics count apart."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, rate_limited: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


RetryEvent = Literal["rate_limited", "retry"]
RetryListener = Callable[[RetryEvent, str], None]  # (event, connection)
_listeners: list[weakref.WeakMethod[RetryListener]] = []
_listeners_lock = threading.Lock()


def add_retry_listener(listener: RetryListener) -> None:
    """Call the bound method `listener(event, connection)` on each rate-limited answer and
    each retry; it is held weakly (dropped when its object goes)."""
    with _listeners_lock:
        _listeners.append(weakref.WeakMethod(listener))


def _tell(event: RetryEvent, connection: str) -> None:
    with _listeners_lock:
        _listeners[:] = [ref for ref in _listeners if ref() is not None]
        alive = [fn for fn in (ref() for ref in _listeners) if fn is not None]
    for fn in alive:
        try:
            fn(event, connection)
        except Exception as e:  # a listener must never break a CRM call
            log.warning("crm.retry_listener_failed", error=repr(e))


MAX_WAIT = 60.0


_STOP: ContextVar[Callable[[], bool] | None] = ContextVar("crmsync_retry_stop", default=None)
_SLICE = 0.2  # seconds between looks at the stop check while waiting to retry


@contextmanager
def stop_waits(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Within the block (and the threads it starts with its context), a wait before a retry
    ends with StopRequested as soon as `should_stop()`: a service asked to stop during a CRM
    outage stopped only after its retries (23 s), and recorded the sync as failed."""
    token = _STOP.set(should_stop)
    try:
        yield
    finally:
        _STOP.reset(token)


def _sleep(seconds: float) -> None:
    should_stop = _STOP.get()
    end = time.monotonic() + seconds
    while True:
        if should_stop is not None and should_stop():
            raise StopRequested("stopped while waiting to call the CRM again")
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, _SLICE) if should_stop is not None else left)


def _wait(base: float) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(multiplier=base, max=MAX_WAIT, jitter=base)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Retriable) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), MAX_WAIT)
        return float(backoff(state))

    return wait


def call_with_retries(
    fn: Callable[[], T], *, retries: int, base_wait: float, what: str, connection: str, crm: str
) -> T:
    """Run `fn`, retrying Retriable failures up to `retries` times; then a CrmApiError."""

    def attempt() -> T:
        try:
            return fn()
        except Retriable as e:
            if e.rate_limited:
                _tell("rate_limited", connection)
            raise

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        _tell("retry", connection)
        log.warning(
            "crm.retry",
            connection=connection,
            call=what,
            attempt=state.attempt_number,
            wait_seconds=round(state.upcoming_sleep, 2),
            reason=str(exc),
        )

    retrying = Retrying(
        retry=retry_if_exception_type(Retriable),
        stop=stop_after_attempt(max(0, retries) + 1),
        wait=_wait(base_wait),
        before_sleep=before_sleep,
        sleep=_sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except Retriable as e:
        raise CrmUnavailable(
            f"{crm} {connection}: {what} kept failing after {retries} retries: {e}"
        ) from None
