"""What every connector offers the sync engine, whichever CRM is behind it.

A connector pulls pages of changed records since a cursor, pulls deletions and the CRM's field
history, lists ids for a reconcile pass, and writes batches. Each page carries the cursor that is
safe to store once the page's records are stored: the engine commits both in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from crmsync.errors import InvalidInput, QuotaStop
from crmsync.model import Opportunity
from crmsync.model.mapping import Mapping, TaskFields
from crmsync.model.owners import OwnerEntry
from crmsync.model.records import Cursor, HistoryRow, SetAside


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


WRITE_KINDS = ("task.create", "task.complete", "task.due", "flag.write")


@dataclass(frozen=True)
class Write:
    """One record write, in crmsync's terms; the connector turns it into the CRM's fields.

    `values` by kind: flag.write {field, value}; task.create {subject, body, due_date, due_at,
    priority, owner_id}; task.complete {note}; task.due {due_date, due_at}. `native_id` is the
    opportunity; `task_id` the CRM's id of the task a task.complete or task.due changes.
    """

    key: str
    kind: str
    native_id: str
    values: dict[str, Any]
    task_id: str | None = None


@dataclass
class WriteResult:
    """What the CRM said about one write of a batch."""

    key: str
    ok: bool
    crm_id: str | None = None
    error: str | None = None
    retryable: bool = False  # worth sending again later (a row lock, a conflict)
    changed: bool = False  # refused by a conditional update: the record changed since read


@dataclass(frozen=True)
class TaskState:
    """A task as the CRM holds it now, read back before crmsync changes it: a rep may have
    completed it or moved its due date. Salesforce keeps a due day (`due_date`), HubSpot a due
    moment (`due_at`, aware)."""

    completed: bool
    due_date: date | None = None
    due_at: datetime | None = None
    dismissed: bool = False  # the rep set the status the mapping names (tasks.dismiss_status)


class Writer(Protocol):
    """The write side of a connector: batches of flag and task writes, and their checks."""

    connection: str
    meter: ApiMeter
    write_batch_size: int

    def write(self, kind: str, writes: Sequence[Write]) -> list[WriteResult]:
        """Send one batch (at most `write_batch_size`) in ONE API call; a result per write."""

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """The CRM ids of tasks carrying these idempotency keys (those that exist)."""

    def read_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        """The tasks with these CRM ids as the CRM holds them now (one call per 200 Salesforce
        or 100 HubSpot ids); a task missing from the answer was deleted (or never existed)."""

    def changed_since(
        self, cursor: Cursor | None, fields: Sequence[str]
    ) -> dict[str, dict[str, Any]] | None:
        """Records modified after the sync that stored `cursor` read them, by id, with the CRM's
        current values of `fields` (mapped custom fields, e.g. flags); None when the cursor
        cannot tell (no completed sync), meaning every record must be taken as changed."""


class Connector(Writer, Protocol):
    """One CRM connection, as the sync engine and the write-back see it."""

    connection: str
    object_name: str
    meter: ApiMeter
    mapping: Mapping  # the connection's field and stage mapping file

    def load_cache(self, cached: Cursor | None) -> None:
        """Take back what `cache_cursor` gave after the last sync (reference data and when it
        was read: crmsync.connectors.cache); None for a full sync, which reads all afresh."""

    def cache_cursor(self) -> Cursor | None:
        """What to keep for the next sync, stored by the engine once the pull is done."""

    def check(self) -> None:
        """Log in and check that the mapped fields exist in the CRM (a constant few calls; none
        while the cached describe or properties are fresh and name every mapped field)."""

    def pull(self, cursor: Cursor | None, *, started_at: datetime) -> Iterator[Page]:
        """Changed records since `cursor` (all of them when None), deletions included."""

    def pull_history(self, cursor: Cursor | None) -> Iterator[Page]:
        """The CRM's own field history since `cursor` (all of it when None): pages of
        `HistoryRow`s (origin "crm") with the cursor that covers them, kept apart from the
        records' cursor. A CRM whose history crmsync does not read yields no pages and makes no
        calls; the history of its records is then what the store sees change between syncs."""

    def list_ids(self) -> Iterator[str]:
        """Every live record id, for a reconcile pass that finds hard deletes."""

    def reread(self, ids: Sequence[str]) -> Iterator[Page]:
        """Read these records again in full (reconcile: fields that change without a stamp)."""

    def owner_directory(self) -> list[OwnerEntry] | None:
        """Every user who may own a task, when the connection routes tasks; else None. None too
        while the directory last read is fresh (the store keeps it; see load_cache)."""

    def close(self) -> None: ...


def describe_error(exc: BaseException) -> str:
    """One line for a CRM failure: its status and its own message when it gave one."""
    return " ".join(str(exc).split())[:300]


Json = dict[str, Any]


def custom_field(mapping: Mapping, name: str) -> str:
    """The CRM field behind the custom field `name` (what a flag action writes)."""
    source = mapping.custom.get(name)
    if source is None:
        raise InvalidInput(f"mapping {mapping.path}: no custom field '{name}' to write to")
    return source.field


def task_fields(mapping: Mapping) -> TaskFields:
    """Where tasks keep crmsync's key and note; write-back needs the mapping's `tasks:` section."""
    if mapping.tasks is None:
        raise InvalidInput(
            f"mapping {mapping.path}: add a `tasks:` section (key_field) to create tasks"
        )
    return mapping.tasks
