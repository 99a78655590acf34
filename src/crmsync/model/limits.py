"""What a CRM value may be for crmsync to keep it: the documented limits on records.

A record that breaks one is set aside by its connector with the reason (the field and the
problem), never discovered by the database: PostgreSQL cannot hold a NUL character in text or
JSON, no store can hold half of a UTF-16 surrogate pair, JSON has no NaN or Infinity, and a
megabyte of deal name would end up in every task and digest. The limits:

- text: at most `MAX_TEXT` characters per field (131,072: Salesforce's long text area, the
  largest text either CRM holds, so no value a CRM field can hold is refused); no NUL character
  and no unpaired surrogate;
- numbers: finite, under 10^18 in magnitude (Salesforce number fields hold 18 digits) and with at
  most 18 digits after the decimal point;
- stamps (modified_at, created_at): at most `FUTURE_TOLERANCE` (one day) ahead of the CRM's own
  clock, which covers any clock skew.

`storable_raw` makes a set-aside record's raw values storable themselves.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

MAX_TEXT = 131_072
MAX_NUMBER_DIGITS = 18  # numbers stay under 10**18
MAX_DECIMAL_PLACES = 18
FUTURE_TOLERANCE = timedelta(days=1)
STAMPED_FIELDS = ("modified_at", "created_at")  # the CRM's own stamps (not planned dates)
RAW_TEXT_KEPT = 1_000  # characters of an over-long raw value kept in a set-aside row
RAW_DEPTH = 20  # nesting of raw values kept in a set-aside row

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why the store cannot keep this text, or None when it can."""
    if len(value) > MAX_TEXT:
        return f"is {len(value):,} characters long, over the limit of {MAX_TEXT:,}"
    bad = _UNSTORABLE.search(value)
    if bad is None:
        return None
    if bad.group() == "\x00":
        return f"contains a NUL character (at {bad.start():,}), which the store cannot hold"
    return f"contains an unpaired surrogate (at {bad.start():,}), which is not valid Unicode"


def number_problem(value: Decimal) -> str | None:
    """Why crmsync does not keep this number, or None when it does."""
    if not value.is_finite():
        return "is not a finite number"
    if value and value.adjusted() >= MAX_NUMBER_DIGITS:
        return f"is 10^{MAX_NUMBER_DIGITS} or more in magnitude, past crmsync's limit"
    digits, exponent = value.as_tuple()[1:]
    assert isinstance(exponent, int)  # finite
    zeros = len(digits) - len(bytes(digits).rstrip(b"\x00"))
    if exponent + zeros < -MAX_DECIMAL_PLACES:
        return f"has more than {MAX_DECIMAL_PLACES} digits after the decimal point"
    return None


def stamp_problem(value: datetime, now: datetime) -> str | None:
    """Why a CRM stamp cannot be right: it is more than a day ahead of the CRM's clock."""
    if value > now + FUTURE_TOLERANCE:
        return f"is more than 1 day ahead of the CRM's clock ({now:%Y-%m-%d %H:%M} UTC)"
    return None


def storable_raw(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A set-aside record's raw values made storable as JSON, and the fields that were changed.

    NUL characters and unpaired surrogates are written as their escapes (the six characters
    `\\u0000`), NaN and infinities as the strings "NaN", "Infinity" and "-Infinity", text
    longer than `MAX_TEXT` is cut to its first `RAW_TEXT_KEPT` characters with a note, and values
    nested deeper than `RAW_DEPTH` are dropped. Anything else JSON lacks becomes its text.
    """
    changed: list[str] = []
    out = {_key(k): _raw(v, str(k), changed, 0) for k, v in values.items()}
    return out, changed


def _key(key: object) -> str:
    text = str(key)
    return _UNSTORABLE.sub(_escape, text) if _UNSTORABLE.search(text) else text


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _raw(value: Any, name: str, changed: list[str], depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        changed.append(name)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict | list | tuple):
        if depth >= RAW_DEPTH:
            changed.append(name)
            return None
        if isinstance(value, dict):
            return {_key(k): _raw(v, f"{name}.{k}", changed, depth + 1) for k, v in value.items()}
        return [_raw(v, f"{name}[{i}]", changed, depth + 1) for i, v in enumerate(value)]
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TEXT:
        changed.append(name)
        text = text[:RAW_TEXT_KEPT] + f"... ({len(text):,} characters, cut)"
    if _UNSTORABLE.search(text):
        changed.append(name)
        text = _UNSTORABLE.sub(_escape, text)
    return text
