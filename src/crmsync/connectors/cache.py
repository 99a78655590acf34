"""What a connector keeps between syncs: reference data with the moment it was read (describe or
properties, pipelines, owners, users) and the marks of periodic checks.

The sync engine stores it in the store as a cursor of its own (`CACHE_OBJECT`) after each pull
and hands it back before the next one, so a CLI run does not read reference data the last run
read minutes ago. An entry is trusted for `reference_refresh_seconds` (wall clock: the age is
crmsync's own policy, not CRM time); a full sync starts without the cache and reads all afresh.
Losing the cache is harmless: everything in it is read again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.model.records import Cursor

CACHE_OBJECT = "connector-cache"  # the store's cursor row that holds a connection's cache
VERSION = 1  # a cache written by another layout is ignored (read afresh)


def wall_now() -> datetime:
    """This machine's time (tests replace it to age the cache)."""
    return datetime.now(UTC)


class Kept:
    """Named entries, each with the wall-clock moment it was read; fresh for `refresh_seconds`."""

    def __init__(self, refresh_seconds: float, entries: dict[str, Any] | None = None) -> None:
        self.refresh = timedelta(seconds=max(0.0, refresh_seconds))
        self.entries: dict[str, Any] = dict(entries or {})

    @classmethod
    def load(cls, cursor: Cursor | None, refresh_seconds: float) -> Kept:
        """The cache a cursor holds; an empty one for None or a cursor it cannot read."""
        if cursor is None:
            return cls(refresh_seconds)
        try:
            data = json.loads(cursor.value)
        except ValueError:
            return cls(refresh_seconds)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return cls(refresh_seconds)
        entries = data.get("entries")
        return cls(refresh_seconds, entries if isinstance(entries, dict) else {})

    def cursor(self) -> Cursor:
        return Cursor(json.dumps({"version": VERSION, "entries": self.entries}), ())

    def fresh(self, name: str) -> bool:
        """Whether `name` was read less than the refresh interval ago (and not in the future)."""
        entry = self.entries.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("at"), str):
            return False
        try:
            at = datetime.fromisoformat(entry["at"])
        except ValueError:
            return False
        now = wall_now()
        return at <= now + timedelta(minutes=5) and now - at < self.refresh

    def get(self, name: str) -> Any:
        """The value of a fresh entry; None when missing or due for a new read."""
        return self.entries[name].get("value") if self.fresh(name) else None

    def value(self, name: str) -> Any:
        """The value of an entry however old (a mark such as where a window starts); None."""
        entry = self.entries.get(name)
        return entry.get("value") if isinstance(entry, dict) else None

    def put(self, name: str, value: Any = None) -> None:
        """Keep `value` under `name`, read now."""
        self.entries[name] = {"at": wall_now().isoformat(), "value": value}

    def drop(self, name: str) -> None:
        self.entries.pop(name, None)
