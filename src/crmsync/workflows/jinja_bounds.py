"""Bounds on what a task template may cost: Jinja's immutable sandbox, made finite.

Jinja's sandbox keeps a template away from Python's internals, but not away from the machine:
``{{ 7**(9**9) }}``, ``{{ 'x' * 2000000000 }}``, nested loops or ``lipsum(n=100000000)`` run
for hours or take all memory. Here every render is finite:

- checked when the workflow loads: see `jinja_checks`;
- at render time (`BoundedEnvironment`, `Budget`): no value built may exceed `MAX_VALUE`
  characters or items, nor an integer `MAX_POWER_BITS` bits. What could build a huge value in
  one step is checked before it runs: ``**``, ``*``, ``+``, ``%`` and ``~``; the filters and
  methods taking a size (`SIZE_ARGS`: center, indent, truncate, ljust...); join, sum, replace,
  indent, expandtabs, format and ``str.format`` (widths at most `MAX_FORMAT_WIDTH`); every
  other filter's and method's result is checked after. ``range`` gives at most `MAX_RANGE`
  items and ``lipsum`` is gone. Each render may take `MAX_STEPS` loop iterations, calls and
  operations, and `MAX_SECONDS` of time, checked on each step. A Decimal mixed with a float is
  computed as Decimal (``amount * 0.1``).

A render over budget raises `TemplateLimit`, which the caller reports as that deal's failure.
"""

from __future__ import annotations

import decimal
import functools
import itertools
import operator
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "MAX_RANGE",
    "MAX_SECONDS",
    "MAX_STEPS",
    "MAX_VALUE",
    "OPERATORS",
    "SIZE_ARGS",
    "BoundedEnvironment",
    "Budget",
    "TemplateLimit",
    "binop",
    "bounded_range",
    "check_format",
    "check_number",
    "concat",
    "rendering",
]

MAX_VALUE = 100_000  # characters of a text, or items of a list, a template may build
MAX_RANGE = 1_000  # items of range()
MAX_POWER_BITS = 4_096  # size of an integer power (about 1,200 digits)
MAX_STEPS = 10_000  # loop iterations, calls and operations in one render
MAX_SECONDS = 1.0  # time of one render
MAX_FORMAT_WIDTH = 1_000  # width or precision in a format ('%9d', '{:>9}')


class TemplateLimit(Exception):
    """A template asked for more than a task text may cost; the message says which limit."""


# --------------------------------------------------------------------------- the budget
class Budget:
    """What one render may still spend: steps (iterations, calls, operations) and time."""

    __slots__ = ("deadline", "steps")

    def __init__(self, steps: int = MAX_STEPS, seconds: float = MAX_SECONDS) -> None:
        self.steps = steps
        self.deadline = time.monotonic() + seconds

    def spend(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateLimit(f"more than {MAX_STEPS:,} loop iterations, calls and operations")
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"took more than {MAX_SECONDS:g} s")


_CURRENT: ContextVar[Budget | None] = ContextVar("crmsync_template_budget", default=None)


def rendering(run: Callable[[], str]) -> str:
    """Run one render under a fresh budget."""
    token = _CURRENT.set(Budget())
    try:
        return run()
    finally:
        _CURRENT.reset(token)


def _spend() -> None:
    current = _CURRENT.get()
    if current is not None:
        current.spend()


# --------------------------------------------------------------------------- value checks
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
# filters and methods whose numeric arguments are sizes (widths, lengths, counts)
SIZE_ARGS = frozenset(
    {"center", "indent", "wordwrap", "truncate", "batch", "slice", "ljust", "rjust", "zfill"}
)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, _SIZED) else 0


def _bounded(value: Any, what: str) -> Any:
    if _size(value) > MAX_VALUE:
        raise TemplateLimit(f"{what} would be longer than {MAX_VALUE:,}")
    return value


def check_number(value: Any, what: str) -> None:
    if _number(value) and abs(value) > MAX_VALUE:
        shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        raise TemplateLimit(f"{what} {shown} is larger than {MAX_VALUE:,}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _as_decimal(left: Any, right: Any) -> tuple[Any, Any]:
    """A Decimal and a float computed together: the float as the Decimal it prints as."""
    if isinstance(left, Decimal) and isinstance(right, float):
        return left, Decimal(repr(right))
    if isinstance(right, Decimal) and isinstance(left, float):
        return Decimal(repr(left)), right
    return left, right


_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_format(text: str, percent: bool) -> None:
    """Refuse a format whose width or precision would build a huge text."""
    specs: list[str] = []
    if percent:
        for match in _WIDTH.finditer(text):
            specs += [g for g in match.groups() if g]
    else:
        for _, field, spec, _ in string.Formatter().parse(text):
            if field is not None and spec:
                if "{" in spec:
                    raise TemplateLimit("a format width taken from a value is not allowed")
                specs += re.findall(r"\d+", spec)
    for spec in specs:
        if spec == "*":
            raise TemplateLimit("a format width taken from a value ('*') is not allowed")
        if len(spec) > 4 or int(spec) > MAX_FORMAT_WIDTH:
            raise TemplateLimit(f"a format width of {spec} is larger than {MAX_FORMAT_WIDTH:,}")


def binop(op: str, left: Any, right: Any) -> Any:
    """``left op right`` with the bounds: sizes checked before anything large is built."""
    left, right = _as_decimal(left, right)
    if op == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1 and right * abs(left).bit_length() > MAX_POWER_BITS:
            raise TemplateLimit(f"{left} ** {right} is too large")
    elif op == "*":
        ints = isinstance(left, int) and isinstance(right, int)
        if ints and left.bit_length() + right.bit_length() > MAX_POWER_BITS:
            raise TemplateLimit(f"a product of more than {MAX_POWER_BITS:,} bits")
        for seq, times in ((left, right), (right, left)):
            if isinstance(times, int) and _size(seq) and _size(seq) * times > MAX_VALUE:
                raise TemplateLimit(f"repeating a value {times:,} times would be too long")
    elif op == "+" and _size(left) and _size(right) and _size(left) + _size(right) > MAX_VALUE:
        raise TemplateLimit(f"joining the two values would be longer than {MAX_VALUE:,}")
    elif op == "%" and isinstance(left, str):
        check_format(left, percent=True)
        _check_fill(left, left.count("%"), [right], "'%'")
    try:
        result = OPERATORS[op](left, right)
    except (OverflowError, decimal.Overflow):
        raise TemplateLimit(f"the result of '{op}' is too large") from None
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except decimal.DecimalException:
        raise TemplateLimit(f"'{op}' cannot be computed for these values") from None
    return _bounded(result, f"the result of '{op}'")


OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "**": operator.pow,
    "%": operator.mod,
}


def concat(parts: Iterable[Any]) -> str:
    """``a ~ b``, refusing a result beyond `MAX_VALUE` characters before building it."""
    texts = [str(p) for p in parts]
    if sum(map(len, texts)) > MAX_VALUE:
        raise TemplateLimit(f"'~' would build a text longer than {MAX_VALUE:,}")
    return "".join(texts)


def bounded_range(*args: int) -> range:
    """Jinja's ``range``, with at most `MAX_RANGE` items."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateLimit(f"range() of {len(numbers):,} items: at most {MAX_RANGE:,}")
    return numbers


def bounded_iter(value: Any) -> Iterator[Any]:
    """A loop's items, one step of the budget each."""
    for item in value:
        _spend()
        yield item


def _text_size(value: Any, depth: int = 0) -> int:
    """About how long `str(value)` is, without making it: containers count their items (3
    deep), stopping once past `MAX_VALUE` (at most that many steps)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple | set | frozenset | dict) and depth < 3:
        total = 2
        for item in value.items() if isinstance(value, dict) else value:
            total += _text_size(item, depth + 1) + 2
            if total > MAX_VALUE:
                break
        return total
    return 2 + _size(value) * 20 if _size(value) else 50


def _check_fill(fmt: str, fields: int, values: Iterable[Any], what: str) -> None:
    """Refuse a format with `fields` places that `values` would fill past `MAX_VALUE`."""
    longest = max((_text_size(v) for v in values), default=0)
    if len(fmt) + fields * longest > MAX_VALUE:
        raise TemplateLimit(f"{what} would build a text longer than {MAX_VALUE:,}")


def materialized(value: Any) -> Any:
    """An iterator (a map, a select) as a list of at most `MAX_VALUE` items, so that its size
    can be checked before a join or sum; anything else as it is."""
    if isinstance(value, Iterator):
        items = list(itertools.islice(value, MAX_VALUE + 1))
        if len(items) > MAX_VALUE:
            raise TemplateLimit(f"more than {MAX_VALUE:,} items")
        return items
    return value


def _precheck(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse the calls that would build a huge value before they build it."""
    if name in SIZE_ARGS:
        for arg in (*args, *kwargs.values()):
            check_number(arg, f"{name}: an argument of")
    if name == "indent" and isinstance(value, str):
        width = args[0] if args else kwargs.get("width", 4)
        if isinstance(width, int) and (value.count("\n") + 1) * width > MAX_VALUE:
            raise TemplateLimit(f"indent would build a text longer than {MAX_VALUE:,}")
    if name in ("join", "sum") and isinstance(value, list | tuple | set | frozenset):
        separator = args[0] if name == "join" and args and isinstance(args[0], str) else ""
        total = _text_size(value) + len(separator) * len(value)
        if total > MAX_VALUE:
            raise TemplateLimit(f"{name} would build a value longer than {MAX_VALUE:,}")
    if name == "replace" and isinstance(value, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = value.count(old) if old else len(value) + 1
        if len(value) + count * len(new) > MAX_VALUE:
            raise TemplateLimit(f"replace would build a text longer than {MAX_VALUE:,}")
    if name == "format" and isinstance(value, str):
        check_format(value, percent=True)
        _check_fill(value, value.count("%"), (*args, *kwargs.values()), "format")
    if name == "expandtabs" and isinstance(value, str):
        width = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(width, int) and value.count("\t") * width > MAX_VALUE:
            raise TemplateLimit(f"expandtabs would build a text longer than {MAX_VALUE:,}")


def bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses huge arguments and results (and keeps Jinja's pass_* markers)."""

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        # Jinja passes context/eval context/environment first for pass_* filters
        offset = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
        value = args[offset] if len(args) > offset else None
        if name in ("join", "sum") and value is not None:
            value = materialized(value)
            args = (*args[:offset], value, *args[offset + 1 :])
        _precheck(name, value, args[offset + 1 :], kwargs)
        _spend()
        return _bounded(function(*args, **kwargs), f"the result of '{name}'")

    return bounded


# --------------------------------------------------------------------------- the environment
class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox whose operators, calls, loops and ranges are bounded."""

    intercepted_binops = frozenset(OPERATORS)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        self.globals["range"] = bounded_range
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters["crmsync_loop"] = bounded_iter
        self.filters["crmsync_concat"] = concat

    def add_filters(self, filters: dict[str, Callable[..., Any]]) -> None:
        self.filters.update({name: bounded_filter(name, f) for name, f in filters.items()})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _spend()
        return binop(operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _spend()
        name = getattr(obj, "__name__", "")
        owner = getattr(obj, "__self__", None)
        if name == "join" and isinstance(owner, str) and len(args) == 1:  # 'sep'.join(items)
            args = (materialized(args[0]),)
            _precheck("join", args[0], (owner,), {})
        else:
            _precheck(name, owner, args, kwargs)
        return _bounded(super().call(context, obj, *args, **kwargs), f"the result of {name}()")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__
        check_format(fmt, percent=False)

        def filled(*args: Any, **kwargs: Any) -> str:
            values = [*args, *kwargs.values()]
            if value.__name__ == "format_map" and args:
                values = list(args[0].values()) if isinstance(args[0], dict) else values
            _check_fill(fmt, fmt.count("{"), values, "format")
            return wrapped(*args, **kwargs)

        return filled
