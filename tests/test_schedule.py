"""Cron schedules mean what cron means: days of the week count from Sunday."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crmsync.schedule import cron_trigger

SUNDAY = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _days(cron: str, count: int = 7) -> list[str]:
    """The weekday names of the next `count` fire times after SUNDAY noon (UTC)."""
    trigger = cron_trigger(cron, "UTC")
    out: list[str] = []
    previous = None
    now = SUNDAY
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        out.append(fire.strftime("%a"))
        previous, now = fire, fire + timedelta(seconds=1)
    return out


@pytest.mark.parametrize(
    ("cron", "days"),
    [
        ("0 7 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]),
        ("0 7 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]),
        ("0 8 * * 1", ["Mon"] * 7),
        ("0 8 * * 0", ["Sun"] * 7),
        ("0 8 * * 7", ["Sun"] * 7),
        ("0 8 * * 5-7", ["Fri", "Sat", "Sun", "Fri", "Sat", "Sun", "Fri"]),
        ("0 8 * * */2", ["Tue", "Thu", "Sat", "Sun", "Tue", "Thu", "Sat"]),
        ("@weekly", ["Sun"] * 7),
        ("@daily", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    ],
)
def test_days_of_the_week_count_from_sunday(cron: str, days: list[str]) -> None:
    assert _days(cron) == days


def test_times_and_zones_are_kept() -> None:
    trigger = cron_trigger("30 7 * * 1-5", "America/New_York")
    fire = trigger.get_next_fire_time(None, SUNDAY)
    assert fire is not None
    assert fire.astimezone(UTC) == datetime(2026, 11, 23, 12, 30, tzinfo=UTC)  # EST is UTC-5


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("0 7 * *", "five fields"),
        ("0 7 1 * 1", "not both"),
        ("0 7 * * 9", "day-of-week"),
        ("0 25 * * *", "maximum value"),
    ],
)
def test_invalid_schedules_say_why(cron: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        cron_trigger(cron, "UTC")
