"""Faults the sandbox injects on demand or at a rate, so clients can be tested against bad days.

A fault matches calls by endpoint name (a glob such as `query*` or `deals.search`) and fires a
given number of times, or with a probability on each matching call, from a seeded random source.
Each CRM app turns a fired fault into that CRM's own wire answer.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from crmsync.errors import InvalidInput

REQUEST_FAULTS = (
    "rate_limit",  # 429; Retry-After header when retry_after is set
    "unavailable",  # 503
    "server_error",  # 500
    "slow",  # answer after `delay` seconds (then normally)
    "drop",  # close the connection without an answer
    "expired_session",  # 401: Salesforce INVALID_SESSION_ID, HubSpot EXPIRED_AUTHENTICATION
    "daily_limit",  # Salesforce 403 REQUEST_LIMIT_EXCEEDED, HubSpot 429 policy DAILY
)
RECORD_FAULTS = ("record_error",)  # one record of a batch write fails with `code`
KINDS = REQUEST_FAULTS + RECORD_FAULTS

# Per-record failure codes, in each CRM's vocabulary.
RECORD_CODES = {
    "validation": ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "VALIDATION_ERROR"),
    "deleted": ("ENTITY_IS_DELETED", "OBJECT_NOT_FOUND"),
    "row_lock": ("UNABLE_TO_LOCK_ROW", "CONFLICT"),
}


@dataclass
class Fault:
    """One fault rule. `times` counts down; `rate` (0..1) fires at random on matching calls."""

    kind: str
    endpoint: str = "*"
    times: int | None = 1
    rate: float | None = None
    retry_after: float | None = None
    delay: float = 0.0
    code: str = "validation"  # for record_error: validation | deleted | row_lock
    message: str | None = None
    record_ids: list[str] | None = None  # for record_error: only these records
    fired: int = field(default=0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.kind == "record_error" and self.code not in RECORD_CODES:
            raise InvalidInput(
                f"unknown record_error code {self.code!r}; expected one of {tuple(RECORD_CODES)}"
            )
        if self.rate is not None and not 0 <= self.rate <= 1:
            raise InvalidInput("fault rate must be between 0 and 1")
        if self.rate is not None and self.times == 1:
            self.times = None  # a rate fault keeps firing unless a count is given

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """The active fault rules of one sandbox CRM."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, endpoint: str) -> Fault | None:
        """The request-level fault to apply to this call, if any (consuming one firing)."""
        return self._take(endpoint, REQUEST_FAULTS, None)

    def take_record(self, endpoint: str, record_id: str | None) -> Fault | None:
        """The per-record fault for this record of a batch write, if any."""
        return self._take(endpoint, RECORD_FAULTS, record_id)

    def _take(self, endpoint: str, kinds: tuple[str, ...], record_id: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind not in kinds or not fnmatch.fnmatchcase(endpoint, fault.endpoint):
                    continue
                if fault.record_ids is not None and record_id not in fault.record_ids:
                    continue
                if fault.times is not None and fault.times <= 0:
                    continue
                if fault.rate is not None and self._rng.random() >= fault.rate:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                fault.fired += 1
                return fault
        return None
