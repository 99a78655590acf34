"""Small builders for store tests: opportunities with sensible values, and fixed instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from crmsync.model import Opportunity

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONN = "sf"
OBJ = "Opportunity"


def opp(native_id: str = "006A", connection: str = CONN, **changes: Any) -> Opportunity:
    """A plain open opportunity; keyword arguments override its fields."""
    values: dict[str, Any] = {
        "connection": connection,
        "native_id": native_id,
        "source": "salesforce",
        "name": f"Deal {native_id}",
        "modified_at": NOW - timedelta(days=1),
        "created_at": NOW - timedelta(days=30),
        "owner_id": "005A",
        "stage": "Prospecting",
        "stage_canonical": "qualified",
        "amount": Decimal("1000.00"),
        "close_date": (NOW + timedelta(days=60)).date(),
    }
    values.update(changes)
    return Opportunity(**values)
