"""Rebuilding past days' pipeline snapshots from the stored field history (work in progress)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crmsync.store.store import Store


def backfill(store: Store, connection: str, *, days: int, today: date) -> int:
    """Fill the `days` days before `today` that have no snapshot of the connection."""
    raise NotImplementedError("backfill is not written yet")
