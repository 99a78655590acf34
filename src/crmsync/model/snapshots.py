"""A deal as it stood at the end of one day: what the pipeline review compares day to day.

The store keeps one such row per open deal per connection per day (written after each sync,
backfilled from field history for the days before crmsync ran); the report reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

SNAPSHOT_ORIGINS = ("sync", "backfill")


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """One open deal on one day. `open_findings` counts the workflows' open findings on it."""

    day: date
    key: str
    connection: str
    pipeline: str | None
    stage: str | None
    stage_canonical: str | None
    amount: Decimal | None
    currency: str | None
    probability: float | None  # 0 to 100, as the CRM holds it
    forecast_category: str | None
    close_date: date | None
    owner_id: str | None
    open_findings: int
    origin: str  # "sync" (seen that day) or "backfill" (rebuilt from field history)
