"""Business calendars: weekends, national and regional holidays, and the local "today"."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from crmsync.workflows.calendar import BusinessCalendar

US = BusinessCalendar("US")
PLAIN = BusinessCalendar()


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2026, 11, 25), 1, date(2026, 11, 27)),  # Wed -> Fri: Thanksgiving (Thu) skipped
        (date(2026, 11, 20), 5, date(2026, 11, 30)),  # Fri + 5: weekend and Thanksgiving skipped
        (date(2026, 11, 20), 1, date(2026, 11, 23)),  # Fri -> Mon
        (date(2026, 11, 21), 1, date(2026, 11, 23)),  # Sat -> Mon
        (date(2026, 11, 22), 0, date(2026, 11, 23)),  # n == 0 on a Sunday: the next business day
        (date(2026, 11, 26), 0, date(2026, 11, 27)),  # n == 0 on Thanksgiving: the day after
        (date(2026, 11, 24), 0, date(2026, 11, 24)),  # n == 0 on a business day: that day
        (date(2026, 7, 2), 1, date(2026, 7, 6)),  # Fri Jul 3 is Independence Day (observed)
        (date(2026, 12, 31), 1, date(2027, 1, 4)),  # across the year: Jan 1 2027 (Fri) skipped
        (date(2026, 12, 24), 1, date(2026, 12, 28)),  # Christmas (Fri) and the weekend skipped
    ],
)
def test_us_business_days(start: date, n: int, expected: date) -> None:
    """Due dates skip weekends and US federal holidays (observed days included)."""
    assert US.add_business_days(start, n) == expected


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2026, 11, 25), 1, date(2026, 11, 26)),
        (date(2026, 11, 20), 1, date(2026, 11, 23)),
        (date(2026, 11, 21), 0, date(2026, 11, 23)),
        (date(2026, 11, 16), 10, date(2026, 11, 30)),
    ],
)
def test_weekends_only_without_a_country(start: date, n: int, expected: date) -> None:
    """With no country only Saturdays and Sundays are skipped."""
    assert PLAIN.add_business_days(start, n) == expected


def test_thanksgiving_is_not_a_business_day() -> None:
    """Thanksgiving 2026 (Thursday Nov 26) is a US holiday, but a business day elsewhere."""
    assert US.is_business_day(date(2026, 11, 26)) is False
    assert US.is_business_day(date(2026, 11, 25)) is True
    assert BusinessCalendar("GB").is_business_day(date(2026, 11, 26)) is True
    assert US.is_business_day(date(2026, 11, 28)) is False  # Saturday


@pytest.mark.parametrize(
    ("calendar", "day", "business"),
    [
        (BusinessCalendar("DE", "BY"), date(2026, 1, 6), False),  # Epiphany in Bavaria
        (BusinessCalendar("DE", "by"), date(2026, 1, 6), False),  # region codes in any case
        (BusinessCalendar("DE", "BE"), date(2026, 1, 6), True),  # not in Berlin
        (BusinessCalendar("DE"), date(2026, 1, 6), True),  # nor nationally
        (BusinessCalendar("US", "CA"), date(2026, 3, 31), False),  # Cesar Chavez Day
        (BusinessCalendar("US", "CA"), date(2026, 11, 27), False),  # Day after Thanksgiving
        (US, date(2026, 11, 27), True),
    ],
)
def test_subdivision_holidays(calendar: BusinessCalendar, day: date, business: bool) -> None:
    """A subdivision adds its regional holidays to the national ones."""
    assert calendar.is_business_day(day) is business


def test_subdivision_due_date() -> None:
    """Bavaria's Epiphany moves a due date that Berlin's calendar does not."""
    start = date(2026, 1, 5)  # Monday
    assert BusinessCalendar("DE", "BY").add_business_days(start, 1) == date(2026, 1, 7)
    assert BusinessCalendar("DE", "BE").add_business_days(start, 1) == date(2026, 1, 6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("XX",),
            "unknown country 'XX'; use an ISO 3166 code such as US, GB, DE, FR or CA "
            "(holidays.list_supported_countries() lists them all)",
        ),
        (
            ("US", "XX"),
            "unknown subdivision 'XX' of US; valid ones: AK, AL, AR, AS, AZ, CA, CO, CT, DC, DE, "
            "FL, GA, ... (57 in all)",
        ),
        (
            (None, None, "Mars/Olympus"),
            "unknown timezone 'Mars/Olympus' (use an IANA name such as America/New_York, "
            "Europe/Berlin or UTC)",
        ),
        (
            ("US", None, ""),
            "unknown timezone '' (use an IANA name such as America/New_York, Europe/Berlin or UTC)",
        ),
        ((None, "CA"), "subdivision 'CA' needs a country"),
    ],
)
def test_bad_calendars(args: tuple[str | None, ...], message: str) -> None:
    """Unknown countries, subdivisions and timezones are one-line ValueErrors that help."""
    with pytest.raises(ValueError) as caught:
        BusinessCalendar(*args)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_country_did_you_mean() -> None:
    """A near-miss country code gets a suggestion."""
    with pytest.raises(ValueError, match=r"^unknown country 'U\.S\.' \(did you mean 'US'\?\)"):
        BusinessCalendar("U.S.")
    assert BusinessCalendar("usa").is_business_day(date(2026, 11, 26)) is False  # alpha-3 too


@pytest.mark.parametrize(
    ("timezone", "now", "expected"),
    [
        ("America/New_York", datetime(2026, 11, 21, 3, 0, tzinfo=UTC), date(2026, 11, 20)),
        ("Asia/Tokyo", datetime(2026, 11, 20, 16, 0, tzinfo=UTC), date(2026, 11, 21)),
        ("UTC", datetime(2026, 11, 20, 23, 59, tzinfo=UTC), date(2026, 11, 20)),
    ],
)
def test_today_in_the_calendar_timezone(timezone: str, now: datetime, expected: date) -> None:
    """today() is the local date in the calendar's timezone."""
    assert BusinessCalendar("US", timezone=timezone).today(now) == expected


def test_today_needs_an_aware_datetime() -> None:
    """A naive `now` is refused rather than guessed."""
    with pytest.raises(ValueError, match="timezone-aware"):
        US.today(datetime(2026, 11, 20, 12, 0))


def test_negative_business_days_refused() -> None:
    """n must be 0 or more."""
    with pytest.raises(ValueError, match="0 or more"):
        US.add_business_days(date(2026, 11, 20), -1)


def test_holidays_in_a_year() -> None:
    """The holiday set of a year is loaded once and includes observed days."""
    first = US.holidays_in(2026)
    assert date(2026, 11, 26) in first and date(2026, 7, 3) in first
    assert US.holidays_in(2026) is first


def test_many_due_dates_are_fast() -> None:
    """100,000 due dates over several years take well under a few seconds."""
    calendar = BusinessCalendar("US", "NY", "America/New_York")
    start = date(2025, 1, 1)
    began = time.perf_counter()
    for i in range(100_000):
        calendar.add_business_days(start + timedelta(days=i % 1500), i % 15)
    assert time.perf_counter() - began < 5.0
