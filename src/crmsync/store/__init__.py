"""The local store: normalized opportunities, their field history and the sync's bookkeeping.

SQLite (a file, the default) or PostgreSQL, behind one `Store` that behaves the same on both.
The records it takes and gives (Cursor, HistoryRow, SetAside, ...) are in `crmsync.model.records`;
a lease as stored is a `LeaseState`.
"""

from crmsync.store import fences, marks, quota
from crmsync.store.errors import StoreError, StoreMissing, StoreUnavailable
from crmsync.store.leases import LeaseState
from crmsync.store.store import Store
from crmsync.store.write_group import fewer_collections

__all__ = [
    "LeaseState",
    "Store",
    "StoreError",
    "StoreMissing",
    "StoreUnavailable",
    "fences",
    "fewer_collections",
    "marks",
    "quota",
]
