"""Pydantic's error kinds in words an admin reads without knowing pydantic, and never a value
that came from the environment, a secret file or a whole file."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

from crmsync.files.env import Substituted

TYPE_WORDS = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "decimal_type": "expected a number",
    "decimal_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
    "datetime_type": "expected a date and time (YYYY-MM-DDTHH:MM:SSZ)",
    "datetime_parsing": "expected a date and time (YYYY-MM-DDTHH:MM:SSZ)",
    "datetime_from_date_parsing": "expected a date and time (YYYY-MM-DDTHH:MM:SSZ)",
    "time_delta_type": "expected a duration",
    "time_delta_parsing": "expected a duration",
}


MAX_SHOWN = 80  # a longer value is described, not repeated


def plain_message(
    kind: str, msg: str, ctx: dict[str, Any], value: Any, *, whole_file: bool = False
) -> str:
    """Pydantic's error in words an admin reads without knowing pydantic. A value that came
    from the environment or a secret file, or that is the `whole_file`, is never repeated."""
    if kind in ("missing", "union_tag_not_found"):
        return "field required"
    if kind in TYPE_WORDS:
        return TYPE_WORDS[kind] + got(value, whole_file=whole_file)
    if kind in ("literal_error", "enum", "union_tag_invalid"):
        expected = str(ctx.get("expected") or ctx.get("expected_tags") or "")
        options = re.findall(r"'((?:[^'\\]|\\.)*)'", expected) or [expected]
        if isinstance(value, bool):  # YAML 1.1 reads a bare on/off/yes/no as true/false
            words = " or ".join([", ".join(options[:-1]), options[-1]] if options[1:] else options)
            return (
                f"must be one of: {', '.join(options)}, not {str(value).lower()} (YAML reads "
                f"a bare on, off, yes or no as true or false: write {words})"
            )
        given = str(ctx.get("tag", value))
        close = difflib.get_close_matches(given, options, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"must be one of: {', '.join(options)}, not {given!r}{hint}"
    bounds = {
        "greater_than": "must be greater than {gt}",
        "greater_than_equal": "must be at least {ge}",
        "less_than": "must be less than {lt}",
        "less_than_equal": "must be at most {le}",
        "multiple_of": "must be a multiple of {multiple_of}",
        "too_long": "must have at most {max_length} item(s)",
        "string_too_long": "must be at most {max_length} characters",
        "string_pattern_mismatch": "must match the pattern {pattern}",
    }
    if kind in bounds:
        return bounds[kind].format(**ctx)
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must have at least {n} items"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must be at least {n} characters"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    return msg[:1].lower() + msg[1:]


def got(value: Any, *, whole_file: bool = False) -> str:
    """`, got <the value>` for a message; only a value that is safe and short is repeated."""
    if isinstance(value, Substituted):
        return f", got {value.origin} (not shown)"
    if value is None:
        return ", got nothing"
    if isinstance(value, dict):
        return ", got a mapping"
    if isinstance(value, list):
        return ", got a list"
    if isinstance(value, bool):
        return f", got {str(value).lower()}"
    if isinstance(value, str) and (whole_file or len(value) > MAX_SHOWN):
        return f", got text ({len(value)} characters)"
    if isinstance(value, str | int | float):
        return f", got {value!r}"
    return ""


def scrub(message: str, data: Any) -> str:
    """`message` without any text that came from the environment or a secret file into
    `data`: each part from `${NAME}` shows as `${NAME}`, as the file writes it (`file not found:
    ${STATE_DIR}/key.pem`), a secret file's content as `***` (parts shorter than 3 characters
    are left: they would hide ordinary words)."""
    shown: dict[str, str] = {}
    for v in _substituted(data):
        names = re.findall(r"\$\{(\w+)\}", v.origin)
        labels = [f"${{{n}}}" for n in names] if len(names) == len(v.secrets) else []
        for i, part in enumerate(v.secrets):
            shown.setdefault(part, labels[i] if labels else "***")
        if str(v) not in shown and not v.secrets:
            shown[str(v)] = "***"
    for part in sorted(shown, key=len, reverse=True):
        if len(part) >= 3:
            message = message.replace(part, shown[part])
    return message


def _substituted(data: Any) -> Iterator[Substituted]:
    if isinstance(data, Substituted):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _substituted(value)
    elif isinstance(data, list):
        for value in data:
            yield from _substituted(value)
