"""Cron schedules as APScheduler triggers, read the way cron reads them.

APScheduler 3 numbers the days of the week from Monday (0 = Monday), cron from Sunday (0 or 7 =
Sunday, 1 = Monday), and `CronTrigger.from_crontab` passes the numbers through: "0 7 * * 1-5"
would run Tuesday to Saturday. Here the day-of-week field is expanded by croniter (cron's own
reading) and handed to APScheduler as day names, and the @-shortcuts are accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from apscheduler.triggers.cron import CronTrigger
from croniter import CroniterBadDateError, croniter

NEVER_YEARS = 5  # a schedule with no time in this many years never fires (`0 0 30 2 *`)
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SHORTCUTS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def cron_trigger(cron: str, timezone: str | tzinfo) -> CronTrigger:
    """The trigger for a five-field cron schedule (or an @-shortcut) in `timezone`.

    Raises ValueError with the reason for a schedule that is not valid, including one that
    restricts both the day of the month and the day of the week (cron runs on either,
    APScheduler only on both, so it is refused rather than run differently from what it says),
    and one that never fires (no time in the next NEVER_YEARS years, such as `0 0 30 2 *`).
    """
    text = _SHORTCUTS.get(cron.strip().lower(), cron)
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"five fields are needed, got {len(fields)}")
    minute, hour, day, month, weekday = fields
    if weekday not in ("*", "?"):
        if day not in ("*", "?"):
            raise ValueError(
                "restrict either the day of the month or the day of the week, not both"
            )
        try:
            days = croniter.expand(f"* * * * {weekday}")[0][4]  # this field alone
        except Exception:  # croniter's errors are ValueError subclasses, and a few others
            raise ValueError(_bad_weekday(weekday)) from None
        if not all(isinstance(d, int) and 0 <= d <= 7 for d in days):
            raise ValueError(f"day-of-week '{weekday}' is not supported (use names or 0-7)")
        weekday = ",".join(dict.fromkeys(_DAY_NAMES[d] for d in sorted(days)))
    day = "*" if day == "?" else day
    trigger = CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=timezone
    )
    _fires(text)
    return trigger


def _fires(cron: str) -> None:
    """Raise ValueError when the schedule names no time in the next NEVER_YEARS years."""
    try:
        croniter(cron, datetime.now(UTC), max_years_between_matches=NEVER_YEARS).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(
            f"it never fires (no such date in the next {NEVER_YEARS} years, like 30 February)"
        ) from None
    except Exception:  # a form croniter does not read but APScheduler does: it was accepted
        pass


def _bad_weekday(weekday: str) -> str:
    """Why a day-of-week field is refused, in crmsync's words, with a did-you-mean for a
    misspelled day name."""
    import difflib
    import re

    hints = []
    for word in re.findall(r"[A-Za-z]+", weekday):
        if word.lower() not in _DAY_NAMES:
            close = difflib.get_close_matches(word.lower(), _DAY_NAMES[:7], n=1, cutoff=0.5)
            hints.append(
                f"'{word}' is not a day" + (f" (did you mean '{close[0]}'?)" if close else "")
            )
    reason = "; ".join(hints) or "a day number is out of range"
    return (
        f"bad day-of-week '{weekday}': {reason}; use 0-7 (0 and 7 are Sunday) or "
        "sun, mon, tue, wed, thu, fri, sat, with ranges (mon-fri) and lists (mon,wed,fri)"
    )
