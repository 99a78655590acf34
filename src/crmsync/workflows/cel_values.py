"""Python values as CEL sees them (the record a condition runs on), and a value named in admin
words for error messages."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any


def _timestamp(value: datetime) -> datetime:
    """An aware datetime for CEL; naive ones are taken as UTC (the model stores aware ones)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _date_text(value: date) -> str:
    return value.isoformat()


def _mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): to_cel(v) for k, v in value.items()}


def _sequence(value: Iterable[Any]) -> list[Any]:
    return [to_cel(v) for v in value]


def _same(value: Any) -> Any:
    return value


# Exact-type dispatch is the fast path; subclasses fall back to the isinstance chain below.
_CONVERT: dict[type, Callable[[Any], Any]] = {
    str: _same,
    bool: _same,
    int: _same,
    float: _same,
    type(None): _same,
    Decimal: float,
    date: _date_text,
    datetime: _timestamp,
    timedelta: _same,
    dict: _mapping,
    list: _sequence,
    tuple: _sequence,
    set: lambda v: _sequence(sorted(v, key=repr)),
    frozenset: lambda v: _sequence(sorted(v, key=repr)),
}


def to_cel(value: Any) -> Any:
    """One Python value as CEL sees it.

    Decimal -> double; date -> ``"YYYY-MM-DD"`` text (dates compare as ISO strings); datetime ->
    CEL timestamp (the `cel` package takes aware datetimes; naive ones are taken as UTC);
    timedelta -> duration; None -> null; mappings and sequences are converted item by item.
    Anything else is passed through for `cel` to accept or reject.
    """
    convert = _CONVERT.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _mapping(value)
    if isinstance(value, list | tuple | set | frozenset):
        return _sequence(value)
    return value


_AS_IS = frozenset({str, bool, int, float, type(None)})


def cel_context(values: Mapping[str, Any]) -> dict[str, Any]:
    """`to_cel` over every value of a record (nested dicts and lists included)."""
    as_is = _AS_IS
    return {
        name: value if type(value) in as_is else to_cel(value) for name, value in values.items()
    }


def kind_of(value: Any) -> str:
    """What sort of value this is, in admin words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "a timestamp"
    if isinstance(value, timedelta):
        return "a duration"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a map"
    return f"a {type(value).__name__}"


def show(value: Any) -> str:
    """A short rendering of a result for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return '"' + shown.replace('"', '\\"') + '"'
    return kind_of(value)
