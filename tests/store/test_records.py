"""The canonical text form of history values."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from crmsync.model import TRACKED_FIELDS
from crmsync.model.records import HISTORY_FIELDS, history_value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("Prospecting", "Prospecting"),
        (Decimal("1000.50"), "1000.50"),
        (date(2026, 12, 31), "2026-12-31"),
        (
            datetime(2026, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2026-01-01T00:00:00+00:00",
        ),
        (True, "true"),
        (0.5, "0.5"),
    ],
)
def test_history_value(value: object, text: str | None) -> None:
    """Each type has one text form: Decimal as written, dates ISO, datetimes in UTC."""
    assert history_value(value) == text


def test_history_fields() -> None:
    """History keeps the tracked fields and the canonical stage."""
    assert (*TRACKED_FIELDS, "stage_canonical") == HISTORY_FIELDS
