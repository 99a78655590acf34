"""Turning one CRM record's raw values into an Opportunity, or a reason it cannot be.

Values are checked by the normalized field's type on the way in, and against crmsync's limits on
what a store can hold (`crmsync.model.limits`). A record that fails is set aside with the reason
(field, value, problem) and the sync goes on.
"""

from __future__ import annotations

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
    out: dict[str, Any] = {}
    for name, src in mapping.fields.items():
        raw = values.get(src.field)
        out[name] = convert(FIELDS[name].type, raw, name, src.scale)
    custom = {
        name: convert(src.type, values.get(src.field), f"custom.{name}", src.scale)
        for name, src in mapping.custom.items()
    }
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
