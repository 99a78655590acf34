"""The plain values the store takes and gives besides Opportunity: history, cursors, results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from crmsync.model import TRACKED_FIELDS

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
