"""Workflow conditions: admin-written CEL expressions, checked once and run per opportunity.

A condition such as ``amount >= 10000.0 && !is_closed && owner_email.endsWith("@acme.com")``
is compiled by the `cel` package (a Rust CEL implementation; no Python `eval`). Compiling checks
what can be checked before any record is seen, so a typo fails the workflow file, not the run:

* syntax errors, reported as one line with the column inside the expression;
* unknown field and function names, with a did-you-mean (comprehension variables such as the
  ``x`` in ``items.exists(x, x > 1)`` are not fields and are not flagged);
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
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import cel

from crmsync.workflows.cel_fast import Fast, Unsure, compile_fast

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


class ExpressionError(ValueError):
    """A condition an admin wrote that cannot be used; `column` is 1-based within the expression.

    `column` counts characters from the start of the expression (a multi-line expression counts
    its line breaks as one character each); it is None when the position is unknown. `str()` is
    the message alone, so the caller can prefix file and line.
    """

    message: str
    column: int | None

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column

    def __reduce__(self) -> tuple[Any, ...]:
        """Keep `column` when pickled (for example across worker processes)."""
        return (type(self), (self.message, self.column))


class ConditionFailed(ExpressionError):
    """Evaluating a condition failed for one record; count it and treat the condition as false."""


# --------------------------------------------------------------------------- values


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


# --------------------------------------------------------------------------- helpers


def _as_date(value: Any, function: str) -> date | None:
    """A date from a ``"YYYY-MM-DD"`` text or a timestamp (its UTC date); None for null."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo is not None else value).date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise ValueError(f'{function}() needs a "YYYY-MM-DD" date, got "{value}"') from None
    raise TypeError(f"{function}() needs a date or a timestamp, got {_kind(value)}")


def days_between(start: Any, end: Any) -> int | None:
    """Whole calendar days from `start` to `end` (negative if `end` is earlier); null if any is."""
    a, b = _as_date(start, "days_between"), _as_date(end, "days_between")
    return None if a is None or b is None else (b - a).days


def add_days(value: Any, days: Any) -> str | None:
    """The ``"YYYY-MM-DD"`` date `days` calendar days after `value` (before it when negative)."""
    d = _as_date(value, "add_days")
    if d is None or days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int | float) or days != int(days):
        raise TypeError(f"add_days() needs a whole number of days, got {_show(days)}")
    return (d + timedelta(days=int(days))).isoformat()


def date_of(value: Any) -> str | None:
    """The ``"YYYY-MM-DD"`` date of a timestamp (in UTC) or of a date text; null stays null."""
    d = _as_date(value, "date")
    return None if d is None else d.isoformat()


def _text(name: str, op: Callable[[str], str]) -> Callable[[Any], str | None]:
    def apply(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"{name}() needs text, got {_kind(value)}")
        return op(value)

    apply.__name__ = name
    apply.__doc__ = f'CEL `{name}`: null stays null, so `x.{name}() == "..."` is false for null.'
    return apply


def _ascii(table: dict[int, int]) -> Callable[[str], str]:
    return lambda s: s.translate(table)


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}

#: Functions crmsync adds to CEL (Python callbacks; an expression that uses none of them runs
#: without any Python callback).
HELPER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "days_between": days_between,
    "add_days": add_days,
    "date": date_of,
    "lowerAscii": _text("lowerAscii", _ascii(_LOWER)),
    "upperAscii": _text("upperAscii", _ascii(_UPPER)),
    "trim": _text("trim", str.strip),
}


class _QuietHelpers(logging.Filter):
    """Drop the `cel` package's log line for a failing helper: `ConditionFailed` reports it."""

    prefixes = tuple(f"Python function '{name}' failed" for name in HELPER_FUNCTIONS)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


logging.getLogger("cel").addFilter(_QuietHelpers())

# What the Rust CEL implementation provides natively (operators aside).
_NATIVE_FUNCTIONS = frozenset[str]().union(
    {"size", "contains", "startsWith", "endsWith", "matches"},
    {"int", "uint", "double", "string", "bytes", "dyn", "type", "timestamp", "duration"},
    {"getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear"},
    {"getHours", "getMinutes", "getSeconds", "getMilliseconds"},
    {"of", "ofNonZeroValue", "none", "hasValue", "value", "or", "orValue"},
)
_MACROS = frozenset(("all", "exists", "exists_one", "map", "filter"))
_KNOWN_FUNCTIONS = _NATIVE_FUNCTIONS | HELPER_FUNCTIONS.keys()
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


# --------------------------------------------------------------------------- compiling

_LITERAL_OR_COMMENT = re.compile(
    r"""[rRbB]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")
      | //[^\n]*""",
    re.VERBOSE,
)
_BOUND = re.compile(
    r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,"
    r"(?:\s*([A-Za-z_]\w*)\s*,)?"
)
_CEL_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")
_EXPECTING = re.compile(r" expecting (\{[^}]*\}|\S+)$")
_TOKEN_ERROR = re.compile(r"token recognition error at: '(.*)'$")


def _mask(source: str) -> str:
    """The source with string literals and comments blanked out, offsets unchanged."""
    return _LITERAL_OR_COMMENT.sub(lambda m: " " * len(m.group()), source)


def _column_of(masked: str, pattern: str) -> int | None:
    found = re.search(pattern, masked)
    return None if found is None else found.start() + 1


def _variable_column(masked: str, name: str) -> int | None:
    """Where `name` is first used as a variable: not after a dot, not called."""
    return _column_of(masked, rf"(?<![\w.]){re.escape(name)}(?!\w)(?!\s*\()")


def _function_column(masked: str, name: str) -> int | None:
    return _column_of(masked, rf"(?<!\w){re.escape(name)}\s*\(")


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among `candidates`, else "" (templates too)."""
    options = sorted(candidates)
    lowered = {c.lower(): c for c in options}
    match = lowered.get(name.lower())
    if match is None:
        close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
        match = close[0] if close else None
    return f" (did you mean '{match}'?)" if match else ""


def _syntax_error(source: str, error: Exception) -> ExpressionError:
    """The first error of the cel package's report, as one line with a column."""
    text = str(error)
    found = _CEL_ERROR.search(text)
    if found is None:
        detail = " ".join(text.split(": ", 1)[-1].split())
        return ExpressionError(f"syntax error: {detail}")
    line, col, detail = int(found[1]), int(found[2]), found[3].strip()
    lines = source.split("\n")
    column = sum(len(x) + 1 for x in lines[: line - 1]) + col
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
        program = cel.compile(source)
    except Exception as e:  # the cel package raises ValueError for every parse failure
        raise _syntax_error(source, e) from None

    masked = _mask(source)
    bound: set[str] = set()
    for found in _BOUND.finditer(masked):
        bound.update(n for n in found.groups() if n)
    references = program.references()
    functions = [f for f in references["functions"] if f[:1].isalpha()]
    for name in functions:  # a malformed macro also leaves its variable unbound: report it first
        if name in _MACROS:
            raise ExpressionError(
                f"{name}() takes a variable name and a condition, as in items.{name}(x, x > 0)",
                column=_function_column(masked, name),
            )
    names: list[str] = []
    for name in references["variables"]:
        if name in variables:
            names.append(name)
        elif name not in bound and name not in _BUILTIN_NAMES:
            raise ExpressionError(
                f"unknown field '{name}'{suggest(name, variables)}",
                column=_variable_column(masked, name),
            )
    for name in functions:
        if name not in _KNOWN_FUNCTIONS:
            raise ExpressionError(
                f"unknown function '{name}'{suggest(name, _KNOWN_FUNCTIONS)}",
                column=_function_column(masked, name),
            )
    helpers = {f: HELPER_FUNCTIONS[f] for f in functions if f in HELPER_FUNCTIONS}
    fast = None if functions else compile_fast(source, frozenset(names))
    condition = Condition(source, tuple(names), program, helpers or None, fast)
    condition._trial({name: _SAMPLES[variables[name]] for name in names}, masked)
    return condition


# --------------------------------------------------------------------------- evaluating


class Condition:
    """A compiled condition; call it with a `cel_context` record to get true or false.

    Only the referenced names are handed to CEL (converting the whole record on every call
    would cost far more than evaluating the condition). Raises `ConditionFailed` when this
    record cannot be evaluated; see the module docstring for the policy.
    """

    __slots__ = ("_fast", "_pick", "_run", "source", "variables")

    source: str
    variables: tuple[str, ...]

    def __init__(
        self,
        source: str,
        variables: tuple[str, ...],
        program: cel.Program,
        functions: dict[str, Callable[..., Any]] | None,
        fast: Fast | None = None,
    ) -> None:
        self.source = source
        self._fast = fast  # plain comparisons, answered without calling `cel` (cel_fast.py)
        self.variables = variables  # the declared fields it references, sorted
        self._pick = _picker(variables)
        if functions is None:
            self._run: Callable[[dict[str, Any]], Any] = program.execute
        else:
            helpers = functions
            self._run = lambda values: program.execute(cel.Context(values, helpers))

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"

    @property
    def fast(self) -> bool:
        """Whether plain records are answered without calling `cel` (cel_fast.py)."""
        return self._fast is not None

    def __call__(self, context: Mapping[str, Any]) -> bool:
        """True or false for one record; raises `ConditionFailed` if it cannot be evaluated."""
        fast = self._fast
        if fast is not None:
            try:
                answer = fast(context)
            except Unsure:
                pass
            else:
                if answer is True or answer is False:
                    return answer
        try:
            result = self._run(self._pick(context))
        except Exception as e:
            raise ConditionFailed(_runtime_message(e, self, context)) from e
        if result is True or result is False:
            return result
        raise ConditionFailed(f"condition must be true or false, got {_show(result)}")

    def _trial(self, sample: dict[str, Any], masked: str) -> None:
        """Run once on made-up values to catch mistakes that would fail on every record.

        Only errors that do not depend on the values are reported: type mismatches and a
        result that is not true or false. Anything else (a missing map key, a bad regex, a
        division by zero) may be fine for real records and is left to run time.
        """
        try:
            result = self._run(sample)
        except TypeError as e:
            raise ExpressionError(f"type mismatch: {_type_message(str(e))}") from None
        except RuntimeError as e:
            name = _undefined_function(str(e))
            if name is None:
                return
            raise ExpressionError(
                f"type mismatch: {name}() cannot be used on this kind of value",
                column=_function_column(masked, name),
            ) from None
        except Exception:
            return
        if not isinstance(result, bool):
            raise ExpressionError(f"condition must be true or false, but it gives {_kind(result)}")


def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A function taking `names` out of a record; unrolled for few names (the common case)."""
    if len(names) == 1:
        (a,) = names
        return lambda c: {a: c[a]}
    if len(names) == 2:
        a, b = names
        return lambda c: {a: c[a], b: c[b]}
    if len(names) == 3:
        a, b, d = names
        return lambda c: {a: c[a], b: c[b], d: c[d]}
    return lambda c: {name: c[name] for name in names}


_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")
_FUNCTION_ERROR = re.compile(r"Function '([^']*)' error: (.*?)\.? Check function arguments")
_PYTHON_ERROR = re.compile(r"Python function call failed: \w+: ")
_UNSUPPORTED = re.compile(r"Unsupported operation: (\w+) (\S+) (\w+)")
_CEL_TYPE = {"float": "double", "str": "string", "NoneType": "null"}


def _undefined_function(text: str) -> str | None:
    found = _UNDEFINED.search(text)
    return found[1] if found is not None and found[1] in _KNOWN_FUNCTIONS else None


def _type_message(text: str) -> str:
    """A cel TypeError in admin terms."""
    found = _UNSUPPORTED.search(text)
    if found is not None:
        left, op, right = (
            _CEL_TYPE.get(found[1], found[1]),
            found[2],
            _CEL_TYPE.get(found[3], found[3]),
        )
        return (
            f"cannot compute {left} {op} {right}; CEL does not mix int and double "
            f"(write 10.0 rather than 10, or convert with double(...))"
        )
    return (
        "an operator or function is given values of the wrong type "
        '(dates are "YYYY-MM-DD" text, amounts are doubles such as 10000.0)'
    )


def _runtime_message(error: Exception, condition: Condition, context: Mapping[str, Any]) -> str:
    """Why one record could not be evaluated, in one line (only computed on failure)."""
    missing = [n for n in condition.variables if n not in context]
    if missing:
        return f"no value for {', '.join(repr(n) for n in missing)} in this record"
    nulls = [n for n in condition.variables if context[n] is None]
    null_hint = ""
    if nulls:
        verb = "is" if len(nulls) == 1 else "are"
        null_hint = (
            f"; {', '.join(nulls)} {verb} null (empty) for this record: "
            f"guard with `{nulls[0]} != null && ...`"
        )
    text = " ".join(str(error).split())
    if isinstance(error, KeyError):
        key = error.args[0] if error.args else "?"
        pattern = rf"([A-Za-z_]\w*)\s*\.\s*{re.escape(str(key))}\b"
        owner = re.search(pattern, _mask(condition.source))
        guard = f"has({owner[1]}.{key})" if owner is not None else "has(...)"
        return f"no '{key}' in this record (guard with {guard})"
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    if isinstance(error, IndexError):
        return f"list {text}"
    if isinstance(error, TypeError):
        if nulls:
            return f"cannot compare or combine a null value{null_hint}"
        return _type_message(text)
    undefined = _UNDEFINED.search(text)
    if undefined is not None:
        return f"{undefined[1]}() cannot be used on this value{null_hint}"
    failed = _FUNCTION_ERROR.search(text)
    if failed is not None:
        detail = _PYTHON_ERROR.sub("", failed[2])
        return detail if detail.startswith(f"{failed[1]}()") else f"{failed[1]}() failed: {detail}"
    return text.split(". ")[0] + null_hint


def _kind(value: Any) -> str:
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


def _show(value: Any) -> str:
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
    return _kind(value)
