"""The API allowance of each CRM org or portal, as every worker last saw it.

The CRM counts calls per org (Salesforce) or portal (HubSpot), whichever worker makes them; so
the reading lives in the store, where every worker's jobs start from the newest one (and stop
before the configured share) and leave theirs. A stop for quota blocks the org until a time, so
that no worker spends calls finding out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmsync.store.engine import upsert
from crmsync.store.schema import quota_budgets

if TYPE_CHECKING:
    from crmsync.store.store import Store

__all__ = ["Budget", "block", "read", "read_all", "record"]


@dataclass(frozen=True)
class Budget:
    """One org's row: the CRM's last reading and until when jobs on it wait."""

    org: str
    used: int | None
    allowance: int | None
    observed_at: datetime | None
    blocked_until: datetime | None
    reason: str | None

    def blocked(self, now: datetime) -> bool:
        return self.blocked_until is not None and self.blocked_until > now


def read(store: Store, org: str) -> Budget | None:
    """The org's row, or None before any job on it ended."""
    with store.reading("read quota budget") as conn:
        row = conn.execute(sa.select(quota_budgets).where(quota_budgets.c.org == org)).first()
    return None if row is None else Budget(*row)


def read_all(store: Store) -> dict[str, Budget]:
    """Every org's row, by org."""
    with store.reading("read quota budgets") as conn:
        return {r.org: Budget(*r) for r in conn.execute(sa.select(quota_budgets))}


def record(store: Store, org: str, used: int, allowance: int, observed_at: datetime) -> None:
    """Keep the CRM's reading unless a newer one is stored (workers finish in any order)."""
    with store.writing("record quota reading") as conn:
        base = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
        stmt = base(quota_budgets).values(
            org=org, used=used, allowance=allowance, observed_at=observed_at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["org"],
            set_={
                "used": stmt.excluded.used,
                "allowance": stmt.excluded.allowance,
                "observed_at": stmt.excluded.observed_at,
            },
            where=sa.or_(
                quota_budgets.c.observed_at.is_(None),
                quota_budgets.c.observed_at <= stmt.excluded.observed_at,
            ),
        )
        conn.execute(stmt)


def block(store: Store, org: str, until: datetime, reason: str) -> None:
    """Hold every job on `org` until `until` (a stop for quota)."""
    with store.writing("block quota") as conn:
        stmt = upsert(conn.dialect.name, quota_budgets, ["org"], ["blocked_until", "reason"])
        conn.execute(stmt, {"org": org, "blocked_until": until, "reason": reason})
