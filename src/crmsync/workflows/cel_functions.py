"""The functions a condition can call: crmsync's helpers (dates, ASCII text), added to CEL as
Python callbacks, and the names CEL provides itself."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crmsync.workflows.cel_values import kind_of, show


def _as_date(value: Any, function: str) -> date | None:
    """A date from a ``"YYYY-MM-DD"`` text or a timestamp (its UTC date); None for null."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo is not None else value).date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise ValueError(f'{function}() needs a "YYYY-MM-DD" date, got "{value}"') from None
    raise TypeError(f"{function}() needs a date or a timestamp, got {kind_of(value)}")


def days_between(start: Any, end: Any) -> int | None:
    """Whole calendar days from `start` to `end` (negative if `end` is earlier); null if any is."""
    a, b = _as_date(start, "days_between"), _as_date(end, "days_between")
    return None if a is None or b is None else (b - a).days


def add_days(value: Any, days: Any) -> str | None:
    """The ``"YYYY-MM-DD"`` date `days` calendar days after `value` (before it when negative)."""
    d = _as_date(value, "add_days")
    if d is None or days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int | float) or days != int(days):
        raise TypeError(f"add_days() needs a whole number of days, got {show(days)}")
    return (d + timedelta(days=int(days))).isoformat()


def date_of(value: Any) -> str | None:
    """The ``"YYYY-MM-DD"`` date of a timestamp (in UTC) or of a date text; null stays null."""
    d = _as_date(value, "date")
    return None if d is None else d.isoformat()


def _text(name: str, op: Callable[[str], str]) -> Callable[[Any], str | None]:
    def apply(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"{name}() needs text, got {kind_of(value)}")
        return op(value)

    apply.__name__ = name
    apply.__doc__ = f'CEL `{name}`: null stays null, so `x.{name}() == "..."` is false for null.'
    return apply


def _ascii(table: dict[int, int]) -> Callable[[str], str]:
    return lambda s: s.translate(table)


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}

#: Functions crmsync adds to CEL (Python callbacks; an expression that uses none of them runs
#: without any Python callback).
HELPER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "days_between": days_between,
    "add_days": add_days,
    "date": date_of,
    "lowerAscii": _text("lowerAscii", _ascii(_LOWER)),
    "upperAscii": _text("upperAscii", _ascii(_UPPER)),
    "trim": _text("trim", str.strip),
}


class _QuietHelpers(logging.Filter):
    """Drop the `cel` package's log line for a failing helper: `ConditionFailed` reports it."""

    prefixes = tuple(f"Python function '{name}' failed" for name in HELPER_FUNCTIONS)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


logging.getLogger("cel").addFilter(_QuietHelpers())

# What the Rust CEL implementation provides natively (operators aside).
_NATIVE_FUNCTIONS = frozenset[str]().union(
    {"size", "contains", "startsWith", "endsWith", "matches"},
    {"int", "uint", "double", "string", "bytes", "dyn", "type", "timestamp", "duration"},
    {"getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear"},
    {"getHours", "getMinutes", "getSeconds", "getMilliseconds"},
    {"of", "ofNonZeroValue", "none", "hasValue", "value", "or", "orValue"},
)
#: Every function name a condition may call: CEL's own and crmsync's helpers.
KNOWN_FUNCTIONS = _NATIVE_FUNCTIONS | HELPER_FUNCTIONS.keys()
