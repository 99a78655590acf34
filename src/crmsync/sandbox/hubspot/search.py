"""HubSpot CRM search: filter groups (OR of ANDs), one sort, `limit` <= 200, `after` < 10,000.

Values compare by the property's type: numbers as numbers (ids as integers, never as strings),
datetimes by instant (filter values in epoch milliseconds or ISO 8601), everything else as
case-insensitive strings, as HubSpot does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crmsync.sandbox.clock import from_epoch_ms, hs_datetime, parse_datetime
from crmsync.sandbox.hubspot.records import HsRecord
from crmsync.sandbox.hubspot.schema import PROPERTIES, Property

MAX_LIMIT = 200
MAX_RESULTS = 10_000
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
OPERATORS = (
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
)

Predicate = Callable[[HsRecord], bool]


class SearchError(Exception):
    """A search request HubSpot would refuse with 400 VALIDATION_ERROR."""


@dataclass
class Search:
    """A validated search request."""

    predicate: Predicate
    sort_key: Callable[[HsRecord], Any] | None
    descending: bool
    limit: int
    after: int
    properties: list[str] | None


def compile_search(object_type: str, body: dict[str, Any]) -> Search:
    """Check a search body and compile its filters; raises SearchError with HubSpot's message."""
    defs = PROPERTIES[object_type]
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise SearchError("filterGroups must be an array")
    if len(groups) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups: {len(groups)} (max {MAX_GROUPS})")
    total = 0
    compiled_groups: list[list[Predicate]] = []
    for group in groups:
        filters = (group or {}).get("filters") or []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                f"Too many filters in a group: {len(filters)} (max {MAX_FILTERS_PER_GROUP})"
            )
        total += len(filters)
        compiled_groups.append([_compile_filter(defs, f) for f in filters])
    if total > MAX_FILTERS:
        raise SearchError(f"Too many filters: {total} (max {MAX_FILTERS})")

    def predicate(rec: HsRecord) -> bool:
        if not compiled_groups:
            return True
        return any(all(p(rec) for p in g) for g in compiled_groups)

    sorts = body.get("sorts") or []
    if len(sorts) > 1:
        raise SearchError("Only one sort is supported")
    sort_key = None
    descending = False
    if sorts:
        s = sorts[0]
        if isinstance(s, str):  # the old shorthand: "-createdate"
            name, descending = s.lstrip("-"), s.startswith("-")
        else:
            name = s.get("propertyName", "")
            descending = str(s.get("direction", "ASCENDING")).upper() == "DESCENDING"
        prop = defs.get(name)
        if prop is None:
            raise SearchError(f"Unable to sort by unknown property: {name}")
        sort_key = _sort_key(prop)
    try:
        limit = int(body.get("limit", 10))
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise SearchError("limit and after must be integers") from None
    if limit < 1 or limit > MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}; got {limit}")
    if after >= MAX_RESULTS:
        raise SearchError(
            f"The search API returns at most {MAX_RESULTS} results for a query; "
            f"'after' ({after}) must be below {MAX_RESULTS}"
        )
    props = body.get("properties")
    if props is not None and not isinstance(props, list):
        raise SearchError("properties must be an array")
    return Search(predicate, sort_key, descending, limit, after, props or None)


def run_search(search: Search, records: list[HsRecord]) -> tuple[int, list[HsRecord]]:
    """(total matches, the page of records); without a sort, records come in id order."""
    matched = [r for r in records if search.predicate(r)]
    if search.sort_key is not None:
        key = search.sort_key
        present = [r for r in matched if key(r) is not None]
        missing = [r for r in matched if key(r) is None]
        present.sort(key=lambda r: (key(r), r.id), reverse=search.descending)
        matched = present + missing
    else:
        matched.sort(key=lambda r: r.id)
    end = min(search.after + search.limit, MAX_RESULTS)
    return len(matched), matched[search.after : end]


def _getter(prop: Property) -> Callable[[HsRecord], Any]:
    """A function giving a record's comparable value for `prop` (None when unset)."""
    name = prop.name
    if name == "hs_object_id":
        return lambda r: r.id
    if prop.type == "number":

        def number(r: HsRecord) -> float | None:
            v = r.properties.get(name)
            if v is None or v == "":
                return None
            try:
                return float(v)
            except ValueError:
                return None

        return number
    if prop.type in ("datetime", "date"):
        # stored as uniform ISO strings, which order like the instants they name
        return lambda r: r.properties.get(name) or None
    return lambda r: (r.properties.get(name) or "").lower() or None


def _sort_key(prop: Property) -> Callable[[HsRecord], Any]:
    return _getter(prop)


def _operand(prop: Property, value: Any) -> Any:
    """Convert a filter value into the comparable form `_getter` yields."""
    if value is None:
        raise SearchError(f"Filter on {prop.name} needs a value")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if prop.name == "hs_object_id" or prop.type == "number":
        try:
            num = float(text)
        except ValueError:
            raise SearchError(f"{text} is not a valid number for {prop.name}") from None
        return int(num) if prop.name == "hs_object_id" else num
    if prop.type in ("datetime", "date"):
        try:
            if text.lstrip("-").isdigit():
                return hs_datetime(from_epoch_ms(int(text)))
            return hs_datetime(parse_datetime(text))
        except (ValueError, OverflowError):
            raise SearchError(f"{text} is not a valid datetime for {prop.name}") from None
    return text.lower()


def _compile_filter(defs: dict[str, Property], f: dict[str, Any]) -> Predicate:
    name = f.get("propertyName", "")
    op = str(f.get("operator", "EQ")).upper()
    prop = defs.get(name)
    if prop is None:
        raise SearchError(f"There was a problem with the request. Property {name} does not exist")
    if op not in OPERATORS:
        raise SearchError(f"Invalid operator {op}; expected one of {', '.join(OPERATORS)}")
    get = _getter(prop)
    if op == "HAS_PROPERTY":
        return lambda r: get(r) is not None
    if op == "NOT_HAS_PROPERTY":
        return lambda r: get(r) is None
    if op in ("IN", "NOT_IN"):
        values = {_operand(prop, v) for v in (f.get("values") or [])}
        if op == "IN":
            return lambda r: get(r) in values
        return lambda r: get(r) not in values
    if op == "BETWEEN":
        lo, hi = _operand(prop, f.get("value")), _operand(prop, f.get("highValue"))
        return lambda r: (v := get(r)) is not None and lo <= v <= hi
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(f.get("value", "")).lower().strip("*")
        hit: Predicate = lambda r: token in str(r.properties.get(name) or "").lower()  # noqa: E731
        return hit if op == "CONTAINS_TOKEN" else (lambda r: not hit(r))
    operand = _operand(prop, f.get("value"))
    if op == "EQ":
        return lambda r: get(r) == operand
    if op == "NEQ":
        return lambda r: get(r) != operand
    if op == "LT":
        return lambda r: (v := get(r)) is not None and v < operand
    if op == "LTE":
        return lambda r: (v := get(r)) is not None and v <= operand
    if op == "GT":
        return lambda r: (v := get(r)) is not None and v > operand
    return lambda r: (v := get(r)) is not None and v >= operand
