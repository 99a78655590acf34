"""The sandbox's notion of now, and the wire formats each CRM uses for datetimes.

Tests move the clock instead of sleeping, so record timestamps and limits are predictable.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Real UTC time plus an adjustable offset; `freeze` pins it for deterministic tests."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current sandbox time, timezone-aware UTC."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def freeze(self, at: datetime | None = None) -> None:
        """Stop the clock at `at` (default: now) until `unfreeze` or `advance`."""
        with self._lock:
            self._frozen = (at or datetime.now(UTC) + self._offset).astimezone(UTC)

    def unfreeze(self) -> None:
        """Let the clock run again from where it was frozen."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - datetime.now(UTC)
                self._frozen = None

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`, frozen or not."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta


def sf_datetime(dt: datetime) -> str:
    """Salesforce's datetime wire format: `2026-11-20T08:15:00.000+0000` (always UTC here)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def hs_datetime(dt: datetime) -> str:
    """HubSpot's datetime wire format: `2026-11-20T08:15:00.123Z`."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> datetime:
    """Parse either CRM's datetime format (or plain ISO 8601) into an aware UTC datetime."""
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    elif len(t) > 5 and t[-5] in "+-" and t[-4:].isdigit() and ":" not in t[-5:]:
        t = t[:-2] + ":" + t[-2:]
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def epoch_ms(dt: datetime) -> int:
    """Milliseconds since the epoch, as HubSpot's filters and history timestamps use."""
    return int(dt.timestamp() * 1000)


def from_epoch_ms(ms: int) -> datetime:
    """The aware UTC datetime for an epoch-milliseconds value."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
