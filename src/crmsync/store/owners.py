"""Each connection's owner directory: replaced whole by the sync that read it, read by routing.

Kept apart from the records: a user or owner changes without any deal changing, and a deal
names only its owner's id; the directory says whether that owner is active and who manages them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmsync.model.owners import OwnerEntry
from crmsync.store.schema import owners

if TYPE_CHECKING:
    from crmsync.store.store import Store


def save_owners(store: Store, connection: str, entries: Sequence[OwnerEntry]) -> None:
    """Replace the connection's directory with `entries`, in one transaction."""
    rows = [
        {
            "connection": connection,
            "owner_id": e.id,
            "name": e.name,
            "email": e.email,
            "active": e.active,
            "manager_id": e.manager_id,
            "teams": ",".join(e.teams) or None,
        }
        for e in {e.id: e for e in entries}.values()
    ]
    with store.writing("save owners") as conn:
        conn.execute(sa.delete(owners).where(owners.c.connection == connection))
        if rows:
            conn.execute(sa.insert(owners), rows)


def load_owners(store: Store, connection: str) -> dict[str, OwnerEntry]:
    """The connection's directory by owner id (empty when it was never read)."""
    with store.reading("read owners") as conn:
        rows = conn.execute(sa.select(owners).where(owners.c.connection == connection))
        return {
            r.owner_id: OwnerEntry(
                r.owner_id,
                r.name,
                r.email,
                bool(r.active),
                r.manager_id,
                tuple(r.teams.split(",")) if r.teams else (),
            )
            for r in rows
        }
