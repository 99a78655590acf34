"""A compiled condition at run time: called once per record, true or false, or `ConditionFailed`
with a one-line reason (the policy is in `crmsync.workflows.expressions`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import cel

from crmsync.workflows.cel_fast import Fast, Unsure
from crmsync.workflows.cel_functions import KNOWN_FUNCTIONS
from crmsync.workflows.cel_source import function_column, mask
from crmsync.workflows.cel_values import kind_of, show


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


class Condition:
    """A compiled condition; call it with a `cel_context` record to get true or false.

    Only the referenced names are handed to CEL (converting the whole record on every call
    would cost far more than evaluating the condition). Raises `ConditionFailed` when this
    record cannot be evaluated; see `crmsync.workflows.expressions` for the policy.
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
        raise ConditionFailed(f"condition must be true or false, got {show(result)}")

    def trial(self, sample: dict[str, Any], masked: str) -> None:
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
                column=function_column(masked, name),
            ) from None
        except Exception:
            return
        if not isinstance(result, bool):
            raise ExpressionError(
                f"condition must be true or false, but it gives {kind_of(result)}"
            )


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
    return found[1] if found is not None and found[1] in KNOWN_FUNCTIONS else None


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
        owner = re.search(pattern, mask(condition.source))
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
