"""Hand-made snapshot rows for the figure tests: only what a figure reads needs saying."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from crmsync.model.snapshots import SnapshotRow

DAY = date(2026, 11, 2)


def row(
    key: str,
    amount: str | None = "100",
    close: date | None = date(2026, 12, 15),
    *,
    day: date = DAY,
    currency: str | None = "USD",
    stage: str | None = "proposal",
    probability: float | None = 50.0,
    owner: str | None = "u1",
    findings: int = 0,
) -> SnapshotRow:
    """One open deal on `day`, with the given figures."""
    return SnapshotRow(
        day=day,
        key=key,
        connection=key.split(":")[0],
        pipeline="default",
        stage=stage,
        stage_canonical=stage,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
        probability=probability,
        forecast_category=None,
        close_date=close,
        owner_id=owner,
        open_findings=findings,
        origin="sync",
    )
