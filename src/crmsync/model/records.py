"""The plain records that cross seams besides Opportunity: history, cursors, results, set-asides.

Connectors make them, the store keeps them, workflows read them: none of those owns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from crmsync.model.opportunity import TRACKED_FIELDS, Opportunity

# Fields whose changes are kept: the tracked ones, and the canonical stage crmsync derives.
HISTORY_FIELDS = (*TRACKED_FIELDS, "stage_canonical")
ORIGINS = ("crm", "observed")
RUN_KINDS = ("full", "incremental", "reconcile")
RUN_STATUSES = ("running", "ok", "stopped", "failed")


@dataclass(frozen=True)
class HistoryRow:
    """One change of one field: from the CRM's own history ("crm") or seen between syncs."""

    key: str
    field: str
    old_value: str | None
    new_value: str | None
    changed_at: datetime
    origin: str


class HistoryTuple(NamedTuple):
    """A history row as a plain tuple, read like `HistoryRow` (for readers of many rows)."""

    key: str
    field: str
    old_value: str | None
    new_value: str | None
    changed_at: datetime
    origin: str


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What one deal's field history says that does not depend on the clock (made by
    `store.history.summarize`): the derived fields are these plus ages at a given time."""

    stage_entered_at: datetime | None
    stage_regressions: int
    skipped_stages: tuple[str, ...]
    close_date_push_count: int
    close_date_slip_days: int
    next_step_changed_at: datetime | None  # None when the deal has no next step
    stays: tuple[tuple[str, float], ...]  # completed stays: (canonical stage, days), oldest first


class Summarizer(Protocol):
    """Makes a deal's HistorySummary from the deal and its whole history, sorted by time.

    `version` names the algorithm and the stage mapping: summaries of another version are out
    of date.
    """

    @property
    def version(self) -> str: ...

    def __call__(self, opp: Opportunity, history: Sequence[HistoryTuple]) -> HistorySummary: ...


@dataclass(frozen=True)
class Cursor:
    """Where an incremental sync resumes: an opaque value and the ids already seen at it."""

    value: str
    ids_at_value: tuple[str, ...]


@dataclass(frozen=True)
class BatchResult:
    """What one apply_batch changed: deleted counts records newly marked deleted, history_rows
    the history rows actually added (duplicates of stored ones are not)."""

    inserted: int
    updated: int
    unchanged: int
    deleted: int
    history_rows: int


@dataclass(frozen=True)
class SetAside:
    """A CRM record that could not be normalized, kept with its reason until a good version."""

    native_id: str
    reason: str
    raw: dict[str, Any]


def history_value(value: object) -> str | None:
    """The canonical text form of a field value in history: comparable whoever wrote it."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)
