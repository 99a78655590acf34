"""Turning one CRM record's raw values into an Opportunity, or a reason it cannot be.

Values are checked by the normalized field's type on the way in. A record that fails is set aside
with the reason (field, value, problem) and the sync goes on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from crmsync.model.mapping import Mapping
from crmsync.model.opportunity import FIELDS, Opportunity


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


def normalize(
    connection: str,
    native_id: str,
    values: AnyMapping[str, Any],
    mapping: Mapping,
    *,
    deleted: bool = False,
    stage_ids: tuple[str | None, ...] = (),
) -> Opportunity:
    """Build the Opportunity from `values` (CRM field name -> raw value, @sources included)."""
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
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        if kind == "str":
            return raw if isinstance(raw, str) else str(raw)
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
            if not number.is_finite():
                raise NormalizeError(name, raw, "is not a finite number")
            if scale is not None:
                number *= Decimal(str(scale))
            if kind == "decimal":
                return number
            if kind == "int":
                return int(number)
            result = float(number)
            return result if math.isfinite(result) else None
        if kind == "date":
            return _date(raw)
        if kind == "datetime":
            return _datetime(raw)
    except NormalizeError:
        raise
    except (InvalidOperation, ValueError, TypeError, OverflowError):
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
