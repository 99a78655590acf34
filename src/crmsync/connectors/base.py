"""What every connector offers the sync engine, whichever CRM is behind it.

A connector pulls pages of changed records since a cursor, pulls deletions, lists ids for a
reconcile pass, and (later) writes batches. Each page carries the cursor that is safe to store
once the page's records are stored: the engine commits both in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from crmsync.errors import QuotaStop
from crmsync.model import Opportunity
from crmsync.store import Cursor, HistoryRow, SetAside


@dataclass
class Page:
    """One unit of progress: records to store, ids deleted, CRM history, and the next cursor."""

    opportunities: list[Opportunity] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)
    cursor: Cursor | None = None
    fetched: int = 0


@dataclass
class Quota:
    """What the CRM last said about the daily API allowance."""

    used: int | None = None
    limit: int | None = None

    @property
    def remaining(self) -> int | None:
        if self.used is None or self.limit is None:
            return None
        return max(0, self.limit - self.used)

    def share_used(self) -> float | None:
        if self.used is None or not self.limit:
            return None
        return self.used / self.limit


class ApiMeter:
    """Counts every API call a connector makes and keeps the last quota reading."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.quota = Quota()

    def count(self) -> None:
        with self._lock:
            self.calls += 1

    def read_quota(self, used: int | None, limit: int | None) -> None:
        with self._lock:
            if used is not None and limit is not None:
                self.quota = Quota(used, limit)

    def guard(self, share: float, crm: str, connection: str) -> None:
        """Refuse the next call once `share` of the daily allowance is used (QuotaStop)."""
        used = self.quota.share_used()
        if used is not None and used >= share:
            raise QuotaStop(
                f"{crm} {connection}: {self.quota.used} of {self.quota.limit} daily "
                f"API calls used (stop at {share:.0%}); the sync resumes next run"
            )


class Connector(Protocol):
    """One CRM connection, as the sync engine sees it."""

    connection: str
    object_name: str
    meter: ApiMeter

    def check(self) -> None:
        """Log in and check that the mapped fields exist in the CRM (a constant few calls)."""

    def pull(self, cursor: Cursor | None, *, started_at: datetime) -> Iterator[Page]:
        """Changed records since `cursor` (all of them when None), deletions included."""

    def list_ids(self) -> Iterator[str]:
        """Every live record id, for a reconcile pass that finds hard deletes."""

    def reread(self, ids: Sequence[str]) -> Iterator[Page]:
        """Read these records again in full (reconcile: fields that change without a stamp)."""

    def close(self) -> None: ...


def describe_error(exc: BaseException) -> str:
    """One line for a CRM failure: its status and its own message when it gave one."""
    return " ".join(str(exc).split())[:300]


Json = dict[str, Any]
