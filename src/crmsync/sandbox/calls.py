"""Counts every API call a sandbox CRM answers, per endpoint, and tracks the quota left.

Tests assert exact call counts from here, so every request that reaches a CRM's API is counted
once, whatever its outcome (faults included). Admin and OAuth token requests are counted under
their own names but do not consume API quota, as in Salesforce and HubSpot.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass


@dataclass
class Quota:
    """Daily allowance and rolling-window limits; `enforce` makes the windows answer 429."""

    daily_limit: int
    window_seconds: float = 10.0
    window_limit: int = 190
    search_per_second: int = 5
    enforce: bool = False


class CallLog:
    """Thread-safe per-endpoint counters plus the quota state derived from them."""

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._daily_used = 0
        self._window: deque[float] = deque()
        self._search_window: deque[float] = deque()

    def record(self, endpoint: str, *, billable: bool = True, search: bool = False) -> None:
        """Count one call to `endpoint`; billable calls use up daily and rolling quota."""
        now = time.monotonic()
        with self._lock:
            self._counts[endpoint] += 1
            if billable:
                self._daily_used += 1
                self._window.append(now)
                if search:
                    self._search_window.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._window and now - self._window[0] > self.quota.window_seconds:
            self._window.popleft()
        while self._search_window and now - self._search_window[0] > 1.0:
            self._search_window.popleft()

    def counts(self) -> dict[str, int]:
        """Calls per endpoint since the last reset."""
        with self._lock:
            return dict(self._counts)

    def total(self, prefix: str = "") -> int:
        """Calls to endpoints whose name starts with `prefix` (all by default)."""
        with self._lock:
            return sum(n for k, n in self._counts.items() if k.startswith(prefix))

    def reset(self) -> None:
        """Forget the per-endpoint counts (quota used stays, as a real CRM's would)."""
        with self._lock:
            self._counts.clear()

    @property
    def daily_used(self) -> int:
        with self._lock:
            return self._daily_used

    def set_daily_used(self, used: int) -> None:
        """Pretend `used` calls were already spent today (to test quota guards)."""
        with self._lock:
            self._daily_used = used

    @property
    def daily_remaining(self) -> int:
        with self._lock:
            return max(0, self.quota.daily_limit - self._daily_used)

    def window_remaining(self) -> int:
        """Calls left in the current rolling window (HubSpot's ten-secondly limit)."""
        with self._lock:
            self._trim(time.monotonic())
            return max(0, self.quota.window_limit - len(self._window))

    def search_remaining(self) -> int:
        with self._lock:
            self._trim(time.monotonic())
            return max(0, self.quota.search_per_second - len(self._search_window))

    def over_daily(self) -> bool:
        """True once the daily allowance is spent (checked before a call is counted)."""
        with self._lock:
            return self._daily_used >= self.quota.daily_limit

    def over_window(self, search: bool) -> str | None:
        """The rolling policy a new call would break when limits are enforced, else None."""
        if not self.quota.enforce:
            return None
        with self._lock:
            self._trim(time.monotonic())
            if search and len(self._search_window) >= self.quota.search_per_second:
                return "SECONDLY"
            if len(self._window) >= self.quota.window_limit:
                return "TEN_SECONDLY_ROLLING"
        return None
