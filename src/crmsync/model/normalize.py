"""Turning one CRM record's raw values into an Opportunity, or a reason it cannot be.

Values are checked by the normalized field's type on the way in, and against crmsync's limits on
what a store can hold (`crmsync.model.limits`). A record that fails is set aside with the reason
(field, value, problem) and the sync goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from crmsync.model.limits import (
    STAMPED_FIELDS,
    number_problem,
    stamp_problem,
    storable_raw,
    text_problem,
)
from crmsync.model.mapping import Mapping
from crmsync.model.opportunity import FIELDS, Opportunity
from crmsync.model.records import SetAside


@dataclass
class NormalizeError(Exception):
    """Why a record cannot become an Opportunity."""

    field: str
    value: Any
    problem: str

    def __str__(self) -> str:
        shown = repr(self.value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{self.field}: {self.problem} (got {shown})"


def set_aside(native_id: str, error: NormalizeError, values: AnyMapping[str, Any]) -> SetAside:
    """The record kept aside with its reason; its raw values made storable (see `storable_raw`),
    the reason then says which of them were changed."""
    raw, changed = storable_raw(dict(values))
    reason = str(error)
    if changed:
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        reason += f" [kept raw values made storable: {shown}]"
    return SetAside(native_id, reason, raw)


def normalize(
    connection: str,
    native_id: str,
    values: AnyMapping[str, Any],
    mapping: Mapping,
    *,
    deleted: bool = False,
    stage_ids: tuple[str | None, ...] = (),
    now: datetime | None = None,
) -> Opportunity:
    """Build the Opportunity from `values` (CRM field name -> raw value, @sources included).

    `now` is the CRM's clock: a stamp more than a day ahead of it is refused.
    """
    steps, custom_names = _plan(mapping)
    out: dict[str, Any] = {}
    if _clean_text(values):  # each value as `convert` makes it, most in one step
        for name, source, kind, scale, quick in steps:
            raw = values.get(source)
            value = quick(raw)
            out[name] = convert(kind, raw, name, scale) if value is _SLOW else value
    else:
        for name, source, kind, scale, _ in steps:
            out[name] = convert(kind, values.get(source), name, scale)
    custom = {name[7:]: out.pop(name) for name in custom_names}  # "custom.<name>"
    if not out.get("name"):
        raise NormalizeError("name", values.get(mapping.fields["name"].field), "is empty")
    if out.get("modified_at") is None:
        raise NormalizeError("modified_at", None, "is missing")
    if now is not None:
        for name in STAMPED_FIELDS:
            stamp = out.get(name)
            problem = None if stamp is None else stamp_problem(stamp, now)
            if problem is not None:
                raise NormalizeError(name, values.get(mapping.fields[name].field), problem)
    out["stage_canonical"] = mapping.canonical_stage(out.get("stage"), *stage_ids)
    for flag in ("is_closed", "is_won"):
        if out.get(flag) is None:
            out[flag] = out["stage_canonical"] in (
                ("closed_won", "closed_lost") if flag == "is_closed" else ("closed_won",)
            )
    return Opportunity(
        connection=connection,
        native_id=native_id,
        source=mapping.crm,
        custom=custom,
        deleted=deleted,
        **out,
    )


def convert(kind: str, raw: Any, name: str, scale: float | None = None) -> Any:
    """One raw CRM value as the normalized type; empty strings count as missing."""
    if raw is None:
        return None
    if isinstance(raw, str):  # whatever its type: no megabyte is parsed, no NUL slips through
        problem = text_problem(raw)
        if problem is not None:
            raise NormalizeError(name, raw, problem)
        if not raw or raw.isspace():
            return None
        if kind == "str":  # most values: text kept as given, without the checks below
            return raw
    try:
        if kind == "str":
            if isinstance(raw, str):
                return raw
            text = str(raw)
            problem = text_problem(text)
            if problem is not None:
                raise NormalizeError(name, raw, problem)
            return text
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "1", "yes"):
                return True
            if text in ("false", "0", "no"):
                return False
            raise NormalizeError(name, raw, "is not true or false")
        if kind in ("decimal", "float", "int"):
            if isinstance(raw, bool):
                raise NormalizeError(name, raw, "is not a number")
            number = Decimal(str(raw).strip())
            problem = number_problem(number)
            if problem is None and scale is not None:
                number *= Decimal(str(scale))
                problem = number_problem(number)
                if problem is not None:
                    problem = f"times its scale {scale:g} {problem}"
            if problem is not None:
                raise NormalizeError(name, raw, problem)
            if kind == "decimal":
                return number
            if kind == "int":
                return int(number)
            return float(number)
        if kind == "date":
            return _date(raw)
        if kind == "datetime":
            return _datetime(raw)
    except NormalizeError:
        raise
    except (ArithmeticError, ValueError, TypeError, OSError):
        raise NormalizeError(name, raw, f"is not a valid {_noun(kind)}") from None
    raise NormalizeError(name, raw, f"has an unknown type {kind}")


def _noun(kind: str) -> str:
    return {"decimal": "number", "float": "number", "int": "whole number"}.get(kind, kind)


def _date(raw: Any) -> date:
    if isinstance(raw, datetime):
        return raw.astimezone(UTC).date()
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    if text.lstrip("-").isdigit() and len(text) > 8:  # epoch milliseconds
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC).date()
    if len(text) > 10:  # HubSpot sends dates as midnight-UTC datetimes
        return _datetime(text).date()
    return date.fromisoformat(text)


def _datetime(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    text = str(raw).strip()
    if text.lstrip("-").isdigit() and len(text) > 8:
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    if len(text) == 10:  # a date where a time was expected: midnight UTC
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and ":" not in text[-5:]:
        text = text[:-2] + ":" + text[-2:]  # Salesforce's +0000
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


# ---- the common values in one step ------------------------------------------------------------
#
# `normalize` converts most values without `convert`'s general path: once a record's text is
# known storable (one check of all its text at once, not one a value), a value in the shape the
# CRMs send (HubSpot's text, "true", "54400", "2026-11-13T22:56:14.000Z"; Salesforce's
# "...+0000") is converted directly, to the same value `convert` gives; anything else, and any
# scaled number, goes through `convert`, which also words every refusal.

_SLOW = object()  # a quick converter's "ask convert"
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
_PLAIN_NUMBER = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")
_PLAIN_LENGTH = 17  # at most 16 digits: under 10^17, at most 15 places (see `number_problem`)


def _clean_text(values: AnyMapping[str, Any]) -> bool:
    """Whether every text value of the record is storable: one `text_problem` over them all
    (a problem in any value is one in their concatenation, and the other way round)."""
    return text_problem("".join([v for v in values.values() if v.__class__ is str])) is None


def _quick_str(raw: Any) -> Any:
    if raw.__class__ is str:
        return raw if raw and not raw.isspace() else None
    return None if raw is None else _SLOW


def _quick_bool(raw: Any) -> Any:
    if raw is None or raw is True or raw is False:
        return raw
    found = _BOOL_TEXT.get(raw) if raw.__class__ is str else None
    return _SLOW if found is None else found


def _quick_stamp(raw: Any) -> Any:
    """A UTC stamp in ISO form (Z or +0000, as HubSpot and Salesforce send them) as `_datetime`
    reads it (Python 3.11's `fromisoformat` takes both forms), else _SLOW."""
    if (
        raw.__class__ is str
        and len(raw) > 19
        and raw[10] == "T"
        and raw[0].isdigit()
        and (raw[-1] == "Z" or raw[-5:] == "+0000")
    ):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            return _SLOW
        if value.tzinfo is UTC:
            return value
    return _SLOW


def _quick_datetime(raw: Any) -> Any:
    return None if raw is None else _quick_stamp(raw)


def _quick_date(raw: Any) -> Any:
    if raw is None:
        return None
    if raw.__class__ is str and len(raw) == 10 and raw[4] == "-" and raw[0].isdigit():
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return _SLOW
    value = _quick_stamp(raw)  # HubSpot sends dates as midnight-UTC stamps
    return value if value is _SLOW else value.date()


def _plain_number(raw: Any) -> Decimal | None:
    """A short plain decimal ("54400", "-0.25") exactly, which no limit refuses; else None."""
    if raw.__class__ is str and len(raw) <= _PLAIN_LENGTH and _PLAIN_NUMBER.fullmatch(raw):
        return Decimal(raw)
    return None


def _quick_decimal(raw: Any) -> Any:
    number = _plain_number(raw)
    return number if number is not None else None if raw is None else _SLOW


def _quick_float(raw: Any) -> Any:
    number = _plain_number(raw)
    return float(number) if number is not None else None if raw is None else _SLOW


def _quick_int(raw: Any) -> Any:
    number = _plain_number(raw)
    return int(number) if number is not None else None if raw is None else _SLOW


def _scaled(kind: str, factor: Decimal) -> Callable[[Any], Any]:
    """The quick converter of a number with a scale: `convert`'s steps for a plain number
    (its limits checked again once scaled; a refusal is left to `convert` to word)."""

    def quick(raw: Any) -> Any:
        number = _plain_number(raw)
        if number is None:
            return None if raw is None else _SLOW
        number *= factor
        if number_problem(number) is not None:
            return _SLOW
        return number if kind == "decimal" else float(number) if kind == "float" else int(number)

    return quick


_NUMBERS = ("decimal", "float", "int")
_QUICK: dict[str, Callable[[Any], Any]] = {
    "str": _quick_str,
    "bool": _quick_bool,
    "datetime": _quick_datetime,
    "date": _quick_date,
    "decimal": _quick_decimal,
    "float": _quick_float,
    "int": _quick_int,
}

# (the value's name, custom ones as "custom.<name>"; the CRM field; its type; scale; quick)
Step = tuple[str, str, str, float | None, Callable[[Any], Any]]
_PLANS: dict[int, tuple[Mapping, list[Step], list[str]]] = {}


def _plan(mapping: Mapping) -> tuple[list[Step], list[str]]:
    """The mapping's fields then custom fields as steps, and the custom names (made once per
    mapping: a mapping is frozen; the entry keeps it alive, so its id is not reused)."""
    found = _PLANS.get(id(mapping))
    if found is None or found[0] is not mapping:
        steps: list[Step] = [
            (name, src.field, FIELDS[name].type, src.scale, _quick(FIELDS[name].type, src.scale))
            for name, src in mapping.fields.items()
        ]
        custom = [f"custom.{name}" for name in mapping.custom]
        steps += [
            (f"custom.{name}", src.field, src.type, src.scale, _quick(src.type, src.scale))
            for name, src in mapping.custom.items()
        ]
        if len(_PLANS) >= 64:
            _PLANS.clear()
        found = _PLANS[id(mapping)] = (mapping, steps, custom)
    return found[1], found[2]


def _quick(kind: str, scale: float | None) -> Callable[[Any], Any]:
    if scale is not None and kind in _NUMBERS:  # the scale as `convert` makes it
        return _scaled(kind, Decimal(str(scale)))
    return _QUICK[kind]
