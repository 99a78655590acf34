"""Retrying CRM calls: 429, 5xx and timeouts, with backoff and jitter, honouring Retry-After.

Only retriable failures are retried; a connector turns its client's exceptions into `Retriable`
(with the server's Retry-After when given) before this policy sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from crmsync.errors import CrmUnavailable

T = TypeVar("T")
log = structlog.get_logger("crmsync.retry")


class Retriable(Exception):
    """A failure worth trying again: rate limited, CRM unavailable, timed out, dropped."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


MAX_WAIT = 60.0


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

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
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
        reraise=True,
    )
    try:
        return retrying(fn)
    except Retriable as e:
        raise CrmUnavailable(
            f"{crm} {connection}: {what} kept failing after {retries} retries: {e}"
        ) from None
