"""The local store: normalized opportunities, their field history and the sync's bookkeeping.

SQLite (a file, the default) or PostgreSQL, behind one `Store` that behaves the same on both.
"""

from crmsync.store.errors import StoreError
from crmsync.store.records import (
    HISTORY_FIELDS,
    BatchResult,
    Cursor,
    HistoryRow,
    HistorySummary,
    SetAside,
    Summarizer,
    history_value,
)
from crmsync.store.store import Store

__all__ = [
    "HISTORY_FIELDS",
    "BatchResult",
    "Cursor",
    "HistoryRow",
    "HistorySummary",
    "SetAside",
    "Store",
    "StoreError",
    "Summarizer",
    "history_value",
]
