"""Workflow conditions: admin-written CEL expressions, checked once and run per opportunity.

A condition such as ``amount >= 10000.0 && !is_closed && owner_email.endsWith("@acme.com")``
is compiled by the `cel` package (a Rust CEL implementation; no Python `eval`). Compiling checks
what can be checked before any record is seen, so a typo fails the workflow file, not the run:

* syntax errors, reported as one line with the column inside the expression;
* unknown field and function names, with a did-you-mean (comprehension variables such as the
  ``x`` in ``items.exists(x, x > 1)`` are not fields and are not flagged);
* size and cost limits (`cel_limits`), checked on the text before anything else;
* a trial run on one made-up value of each declared type, which catches type mistakes that
  would fail on every record (``close_date < timestamp("2026-01-01T00:00:00Z")``,
  ``amount + 1 > 2.0``) and conditions that do not give true or false (``amount``).

What admins see (values come from `to_cel`):

* Amounts and other decimals are doubles: write ``amount >= 10000.0``; ``amount >= 10000`` works
  too, since CEL compares int with double, but arithmetic does not mix them (``amount + 1``
  fails; write ``amount + 1.0``).
* Dates (``close_date``, ``today``) are ``"YYYY-MM-DD"`` text, so they compare as ISO strings:
  ``close_date < today``, ``close_date <= "2026-12-31"``. Timestamps (``last_activity_at``...)
  are CEL timestamps: ``last_activity_at < timestamp("2026-11-01T00:00:00Z")``,
  ``last_activity_at.getFullYear() == 2026``. Helpers bridge the two:
  ``days_between(a, b)`` (whole days from a to b), ``add_days(d, n)`` (a ``"YYYY-MM-DD"``
  date) and ``date(t)`` (the UTC date of a timestamp), all taking dates or timestamps.
  ``lowerAscii()``, ``upperAscii()`` and ``trim()`` are there for text.
* An empty field is ``null``. ``==``/``!=`` work with null (``amount == null``), but ordering
  and arithmetic do not: ``amount > 10.0`` is an error for a deal without an amount. Write
  ``amount != null && amount > 10.0``. ``&&``/``||`` forgive an error when the other side
  decides (``false && <error>`` is false). Keys of ``custom`` are checked with
  ``has(custom.days_since_last_touch)``; a missing key is an error too.

Runtime policy: an error while evaluating one record (a null compared, a missing ``custom``
key, a division by zero, a non-bool result) raises `ConditionFailed`, a one-line
`ExpressionError`. The caller catches it, treats the condition as false for that record and
counts or reports it; nothing else is lost. Raising keeps the hot path free of result
wrapping: a successful evaluation costs one dict build and one Rust call.

This module compiles and checks; the compiled `Condition` and its run-time errors are in
`condition`, values as CEL sees them in `cel_values`, the helper functions in `cel_functions`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import cel

from crmsync.workflows.cel_fast import compile_fast
from crmsync.workflows.cel_functions import HELPER_FUNCTIONS, KNOWN_FUNCTIONS
from crmsync.workflows.cel_limits import LimitExceeded, check_limits
from crmsync.workflows.cel_source import function_column, mask, variable_column
from crmsync.workflows.cel_values import cel_context, to_cel
from crmsync.workflows.condition import Condition, ConditionFailed, ExpressionError

__all__ = [
    "HELPER_FUNCTIONS",
    "Condition",
    "ConditionFailed",
    "ExpressionError",
    "cel_context",
    "compile_condition",
    "suggest",
    "to_cel",
]

_MACROS = frozenset(("all", "exists", "exists_one", "map", "filter"))
# Identifiers CEL resolves itself: type names (``type(x) == string``) and the optional namespace.
_BUILTIN_NAMES = frozenset[str]().union(
    {"int", "uint", "double", "string", "bool", "bytes", "list", "map", "null_type", "type"},
    {"optional"},
)

# One made-up, non-null value per declared type, for the compile-time trial run.
_SAMPLES: dict[str, Any] = {
    "str": "x",
    "bool": False,
    "decimal": 1.0,
    "float": 1.0,
    "int": 1,
    "date": "2000-01-01",
    "datetime": datetime(2000, 1, 1, tzinfo=UTC),
    "map": {},
    "list": [],
}

_BOUND = re.compile(
    r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,"
    r"(?:\s*([A-Za-z_]\w*)\s*,)?"
)
_CEL_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")
_EXPECTING = re.compile(r" expecting (\{[^}]*\}|\S+)$")
_TOKEN_ERROR = re.compile(r"token recognition error at: '(.*)'$")
_RECURSION = re.compile(r"Recursion limit of (\d+) exceeded")


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among `candidates`, else "" (templates too)."""
    options = sorted(candidates)
    lowered = {c.lower(): c for c in options}
    match = lowered.get(name.lower())
    if match is None:
        close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
        match = close[0] if close else None
    return f" (did you mean '{match}'?)" if match else ""


def _source_column(source: str, line: int, col: int) -> int:
    """The 1-based column within the whole expression of `line`:`col` within it."""
    return sum(len(x) + 1 for x in source.split("\n")[: line - 1]) + col


def _syntax_error(source: str, error: Exception) -> ExpressionError:
    """The first error of the cel package's report, as one line with a column."""
    text = str(error)
    found = _CEL_ERROR.search(text)
    deep = _RECURSION.search(text)
    if deep is not None:  # right-nested `? :` chains, which cel_limits does not count
        column = _source_column(source, int(found[1]), int(found[2])) if found else None
        return ExpressionError(
            f"nested more than {deep[1]} levels deep (parentheses, calls, lists and '? :')",
            column=column,
        )
    if found is None:
        detail = " ".join(text.split(": ", 1)[-1].split())
        return ExpressionError(f"syntax error: {detail}")
    line, col, detail = int(found[1]), int(found[2]), found[3].strip()
    column = _source_column(source, line, col)
    if detail.startswith("Syntax error: "):
        detail = detail[len("Syntax error: ") :]
    expecting = _EXPECTING.search(detail)
    if expecting is not None:
        detail = detail[: expecting.start()]
        if not expecting[1].startswith("{"):
            detail += f" (expected {expecting[1]})"
    if detail.startswith("invalid argument to has() macro"):
        detail = (
            "has() takes a map key such as has(custom.region); for a field use `amount != null`"
        )
    token = _TOKEN_ERROR.search(detail)
    if token is not None:
        detail = f"unrecognized text '{token[1].strip()}'"
    if "'<EOF>'" in detail:
        detail += " (the expression ends too early)"
    return ExpressionError(f"syntax error: {detail}", column=column)


def compile_condition(source: str, variables: Mapping[str, str]) -> Condition:
    """Compile and check one condition; `variables` maps each usable name to its type.

    Types are "str", "bool", "decimal", "float", "int", "date", "datetime", "map" or "list".
    Raises `ExpressionError` (one line, with a column where known) for anything an admin must
    fix, and ValueError for an unknown type name (a programming error).
    """
    unknown_types = sorted({t for t in variables.values() if t not in _SAMPLES})
    if unknown_types:
        raise ValueError(f"unknown variable type(s) {unknown_types}; use one of {list(_SAMPLES)}")
    if not source.strip():
        raise ExpressionError("the condition is empty", column=1)
    try:
        check_limits(source)  # before `cel` parses it: see cel_limits for why
    except LimitExceeded as e:
        raise ExpressionError(e.message, column=e.column) from None
    try:
        program = cel.compile(source)
    except Exception as e:  # the cel package raises ValueError for every parse failure
        raise _syntax_error(source, e) from None

    masked = mask(source)
    bound: set[str] = set()
    for found in _BOUND.finditer(masked):
        bound.update(n for n in found.groups() if n)
    references = program.references()
    functions = [f for f in references["functions"] if f[:1].isalpha()]
    for name in functions:  # a malformed macro also leaves its variable unbound: report it first
        if name in _MACROS:
            raise ExpressionError(
                f"{name}() takes a variable name and a condition, as in items.{name}(x, x > 0)",
                column=function_column(masked, name),
            )
    names: list[str] = []
    for name in references["variables"]:
        if name in variables:
            names.append(name)
        elif name not in bound and name not in _BUILTIN_NAMES:
            raise ExpressionError(
                f"unknown field '{name}'{suggest(name, variables)}",
                column=variable_column(masked, name),
            )
    for name in functions:
        if name not in KNOWN_FUNCTIONS:
            raise ExpressionError(
                f"unknown function '{name}'{suggest(name, KNOWN_FUNCTIONS)}",
                column=function_column(masked, name),
            )
    helpers = {f: HELPER_FUNCTIONS[f] for f in functions if f in HELPER_FUNCTIONS}
    fast = None if functions else compile_fast(source, frozenset(names))
    condition = Condition(source, tuple(names), program, helpers or None, fast)
    condition.trial({name: _SAMPLES[variables[name]] for name in names}, masked)
    return condition
