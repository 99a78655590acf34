"""Business days for task due dates: weekends and one country's (or region's) public holidays.

A workflow names its calendar (``country: US``, ``subdivision: CA``, ``timezone:
America/Los_Angeles``); "due in 3 business days" then skips Saturdays, Sundays and that
calendar's holidays (observed days included, e.g. a Friday for a Saturday holiday). Holidays come
from the `holidays` package, loaded one year at a time when first needed and kept as a set, so
computing due dates for many tasks costs a few set look-ups each.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from crmsync.workflows.expressions import suggest

__all__ = ["BusinessCalendar"]

_ONE_DAY = timedelta(days=1)
_CACHE_LIMIT = 4096  # due-date answers kept per calendar (start date x n)


@cache
def _supported() -> dict[str, list[str]]:
    """The countries (and their subdivisions) `holidays` knows: listed once a process, since
    listing them costs about a quarter of a second and every workflow's calendar asks."""
    return dict(holidays.list_supported_countries())


def _listing(codes: list[str], limit: int = 12) -> str:
    shown = ", ".join(codes[:limit])
    return shown + (f", ... ({len(codes)} in all)" if len(codes) > limit else "")


class BusinessCalendar:
    """Monday to Friday, minus the public holidays of `country` (and `subdivision`), if any.

    `country` is an ISO 3166 code such as "US", "GB" or "DE" (any case); `subdivision` a region
    code of that country such as "CA" for California or "BY" for Bavaria; `timezone` an IANA
    name that decides what "today" is. Raises ValueError with a one-line message for an
    unknown country, subdivision or timezone.
    """

    def __init__(
        self, country: str | None = None, subdivision: str | None = None, timezone: str = "UTC"
    ) -> None:
        self.country = country.strip().upper() if country else None
        self.subdivision = subdivision.strip() if subdivision else None
        self.timezone = timezone
        try:
            self._zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone '{timezone}' (use an IANA name such as America/New_York, "
                "Europe/Berlin or UTC)"
            ) from None
        if self.subdivision is not None and self.country is None:
            raise ValueError(f"subdivision '{subdivision}' needs a country")
        self._holidays: holidays.HolidayBase | None = None
        if self.country is not None:
            supported = _supported()
            if self.country not in supported:
                raise ValueError(
                    f"unknown country '{country}'{suggest(self.country, supported)}; use an ISO "
                    "3166 code such as US, GB, DE, FR or CA (holidays.list_supported_countries() "
                    "lists them all)"
                )
            subdivisions = list(supported[self.country])
            if self.subdivision is not None and self.subdivision.upper() in subdivisions:
                self.subdivision = self.subdivision.upper()
            try:
                self._holidays = holidays.country_holidays(self.country, subdiv=self.subdivision)
            except NotImplementedError:
                raise ValueError(
                    f"unknown subdivision '{subdivision}' of {self.country}"
                    f"{suggest(self.subdivision or '', subdivisions)}; valid ones: "
                    f"{_listing(subdivisions)}"
                ) from None
        self._years: dict[int, frozenset[date]] = {}
        self._due: dict[tuple[date, int], date] = {}

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar(country={self.country!r}, subdivision={self.subdivision!r}, "
            f"timezone={self.timezone!r})"
        )

    def holidays_in(self, year: int) -> frozenset[date]:
        """The holiday dates of one year (loaded on first use, then cached)."""
        found = self._years.get(year)
        if found is None:
            if self._holidays is None:
                found = frozenset()
            else:
                found = frozenset(
                    holidays.country_holidays(
                        self._holidays.country, subdiv=self.subdivision, years=year
                    ).keys()
                )
            self._years[year] = found
        return found

    def is_business_day(self, d: date) -> bool:
        """Monday to Friday and not a holiday of this calendar."""
        if d.weekday() >= 5:
            return False
        year = self._years.get(d.year)
        if year is None:
            year = self.holidays_in(d.year)
        return d not in year

    def add_business_days(self, start: date, n: int) -> date:
        """The n-th business day after `start` (not counting `start`); n == 0 gives `start` or
        the next business day after it."""
        if n < 0:
            raise ValueError(f"business days must be 0 or more, got {n}")
        key = (start, n)
        found = self._due.get(key)
        if found is not None:
            return found
        d = start
        if n == 0:
            while not self.is_business_day(d):
                d += _ONE_DAY
        remaining = n
        while remaining:
            d += _ONE_DAY
            if self.is_business_day(d):
                remaining -= 1
        if len(self._due) >= _CACHE_LIMIT:
            self._due.clear()
        self._due[key] = d
        return d

    def today(self, now: datetime) -> date:
        """The calendar date at `now` in this calendar's timezone; `now` must be aware."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        return now.astimezone(self._zone).date()
