"""Opportunity to table row and back, with the checks that keep stored values comparable."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

from crmsync.model import FIELDS, Opportunity
from crmsync.model.records import HISTORY_FIELDS, history_value
from crmsync.store.types import as_utc

# A history row as written: key, field, old_value, new_value, changed_at, origin.
HistoryValues = tuple[str, str, str | None, str | None, datetime, str]
HISTORY_NAMES = ("key", "field", "old_value", "new_value", "changed_at", "origin")


# The dataclass's fields in declaration order: a row read in this order builds an Opportunity.
FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Opportunity))
_DATETIME_AT = tuple(
    i for i, name in enumerate(FIELD_NAMES) if name in FIELDS and FIELDS[name].type == "datetime"
)
_AMOUNT_AT = FIELD_NAMES.index("amount")
CUSTOM_AT = FIELD_NAMES.index("custom")
_CREATED_AT = FIELD_NAMES.index("created_at")
_MODIFIED_AT = FIELD_NAMES.index("modified_at")
_fields_of = attrgetter(*FIELD_NAMES)
_JSON_SCALARS = (str, int, float, bool, type(None))
_HISTORY_AT = tuple((name, FIELD_NAMES.index(name)) for name in HISTORY_FIELDS)


def json_default(value: object) -> Any:
    """How values JSON lacks are written into JSON columns: exact text, ISO dates."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


def dumps(value: object) -> str:
    """JSON text for the store's JSON columns."""
    return json.dumps(value, default=json_default, ensure_ascii=False, separators=(",", ":"))


def values_of(
    opp: Opportunity, connection: str, like: dict[str, Any] | None = None
) -> tuple[Any, ...]:
    """The opportunity's field values as stored (custom as JSON gives it back); checked. With
    `like` (another record's custom values), an identical custom is that same dict, so that a
    page's writes encode it once (only when it writes the same JSON: keys in the same order,
    values of one exact type each, no floats)."""
    if opp.connection != connection:
        raise ValueError(f"opportunity {opp.key} given in a batch for connection {connection!r}")
    values = list(_fields_of(opp))
    for i in _DATETIME_AT:
        v = values[i]
        if v is not None and (v.tzinfo is None or v.utcoffset() is None):
            raise ValueError(f"opportunity {opp.key}: {FIELD_NAMES[i]} is a naive datetime")
    amount = values[_AMOUNT_AT]
    if amount is not None and not isinstance(amount, Decimal):
        raise ValueError(f"opportunity {opp.key}: amount must be a Decimal")
    custom = _as_json(values[CUSTOM_AT])
    values[CUSTOM_AT] = like if like is not None and _same_json(custom, like) else custom
    return tuple(values)


_EXACT = (str, int, bool, type(None))  # equal values of these types write the same JSON


def _same_json(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if len(a) != len(b):
        return False
    for (key, value), (other_key, other) in zip(a.items(), b.items(), strict=True):
        if key != other_key or value.__class__ is not other.__class__ or value != other:
            return False
        if value.__class__ not in _EXACT:
            return False
    return True


def _as_json(custom: dict[str, Any]) -> dict[str, Any]:
    """The custom fields as the JSON column will give them back (Decimal as text, and so on)."""
    if all(type(k) is str and type(v) in _JSON_SCALARS for k, v in custom.items()):
        return dict(custom)
    return dict(json.loads(dumps(custom)))


def opportunity(values: Sequence[Any]) -> Opportunity:
    """An Opportunity from values in FIELD_NAMES order (a row selected that way)."""
    return build(values)


_new = object.__new__
_SETTERS = tuple(getattr(Opportunity, name).__set__ for name in FIELD_NAMES)


def build(values: Sequence[Any]) -> Opportunity:
    """`Opportunity(*values)` for a complete row of stored values, in half the time.

    The frozen dataclass's `__init__` sets its 36 slots one interpreted statement at a time,
    which costs as much as decoding the row; here each slot's own setter is called directly
    (frozenness only guards against `opp.x = ...`). A test holds it equal to the constructor.
    """
    opp = _new(Opportunity)
    for setter, value in zip(_SETTERS, values, strict=True):
        setter(opp, value)
    return opp


# Columns that `opportunity_from_raw` decodes itself (read as the driver gives them): the
# per-value type processors cost more than the rest of reading a row.
_CLOSE_DATE_AT = FIELD_NAMES.index("close_date")
RAW_AT = frozenset((*_DATETIME_AT, _CLOSE_DATE_AT, _AMOUNT_AT, CUSTOM_AT))
_CUSTOM_SEEN: dict[str, dict[str, Any]] = {}


def _custom(value: Any) -> dict[str, Any]:
    """The custom-fields column as a fresh dict. Most deals share a few JSON texts, so a text's
    flat decoding is remembered (bounded) and copied; nested values are decoded each time."""
    if value.__class__ is not str:
        return dict(value)  # PostgreSQL's driver decodes JSONB itself
    found = _CUSTOM_SEEN.get(value)
    if found is not None:
        return dict(found)
    decoded: dict[str, Any] = json.loads(value)
    if len(_CUSTOM_SEEN) < 4096 and all(type(v) in _JSON_SCALARS for v in decoded.values()):
        _CUSTOM_SEEN[value] = dict(decoded)
    return decoded


def opportunity_from_raw(row: Sequence[Any]) -> Opportunity:
    """`opportunity` for a row whose RAW_AT columns come undecoded (text on SQLite): the same
    Opportunity, built in one step per value."""
    values = list(row)
    for i in _DATETIME_AT:
        value = values[i]
        if value is not None:
            values[i] = as_utc(value)
    value = values[_CLOSE_DATE_AT]
    if value.__class__ is str:
        values[_CLOSE_DATE_AT] = date.fromisoformat(value)
    value = values[_AMOUNT_AT]
    if value is not None and value.__class__ is not Decimal:
        values[_AMOUNT_AT] = Decimal(value)
    values[CUSTOM_AT] = _custom(values[CUSTOM_AT])
    return build(values)


def first_history(key: str, values: Sequence[Any]) -> list[HistoryValues]:
    """History for a brand-new opportunity: each kept field that has a value, from nothing.

    Dated at the record's modification stamp, the moment the CRM vouched for these values: a
    value first seen today may have been set long after the deal was created, so dating it at
    creation would claim more than is known (and would hide the CRM's own earlier history).
    """
    changed_at = values[_MODIFIED_AT]
    return [
        (key, name, None, history_value(values[i]), changed_at, "observed")
        for name, i in _HISTORY_AT
        if values[i] is not None
    ]


def changed_history(key: str, old: Sequence[Any], new: Sequence[Any]) -> list[HistoryValues]:
    """History for an update: each kept field whose value differs, at the new modified_at."""
    changed_at = new[_MODIFIED_AT]
    return [
        (key, name, history_value(old[i]), history_value(new[i]), changed_at, "observed")
        for name, i in _HISTORY_AT
        if old[i] != new[i]
    ]
