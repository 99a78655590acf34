"""Positions in a condition's source text, with string literals and comments blanked out: the
columns that error messages point at."""

from __future__ import annotations

import re

_LITERAL_OR_COMMENT = re.compile(
    r"""[rRbB]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")
      | //[^\n]*""",
    re.VERBOSE,
)


def mask(source: str) -> str:
    """The source with string literals and comments blanked out, offsets unchanged."""
    return _LITERAL_OR_COMMENT.sub(lambda m: " " * len(m.group()), source)


def _column_of(masked: str, pattern: str) -> int | None:
    found = re.search(pattern, masked)
    return None if found is None else found.start() + 1


def variable_column(masked: str, name: str) -> int | None:
    """Where `name` is first used as a variable: not after a dot, not called."""
    return _column_of(masked, rf"(?<![\w.]){re.escape(name)}(?!\w)(?!\s*\()")


def function_column(masked: str, name: str) -> int | None:
    return _column_of(masked, rf"(?<!\w){re.escape(name)}\s*\(")
