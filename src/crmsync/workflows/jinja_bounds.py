"""Bounds on what a task template may cost: Jinja's immutable sandbox, made finite.

Jinja's sandbox keeps a template away from Python's internals, but not away from the machine:
``{{ 7**(9**9) }}``, ``{{ 'x' * 2000000000 }}``, nested loops or ``lipsum(n=100000000)`` run
for hours or take all memory. Here every render is finite:

- checked when the workflow loads (`check_tree`): no ``include``/``import``/``extends`` (task
  texts have no loader), no macros, call or filter blocks, block ``set`` or ``recursive``
  loops, loops nested at most `MAX_LOOP_NESTING` deep, no attribute that changes a value
  (``reasons.append``) or is internal (``mro``), and the operations on constants that would be
  too large (``7**(9**9)``, ``range(10**9)``) are reported with their line;
- at render time (`BoundedEnvironment`, `Budget`): ``**``, ``*``, ``+`` and ``%`` refuse results
  beyond `MAX_VALUE` characters or items (or `MAX_POWER_BITS` bits), every filter and method
  refuses numeric arguments beyond `MAX_VALUE` and results beyond it, ``~`` too; ``range``
  gives at most `MAX_RANGE` items and ``lipsum`` is gone; each render may take `MAX_STEPS`
  loop iterations, calls and operations, and `MAX_SECONDS` of time, checked on each step;
  a Decimal mixed with a float is computed as Decimal (``amount * 0.1``).

A render over budget raises `TemplateLimit`, which the caller reports as that deal's failure.
"""

from __future__ import annotations

import decimal
import functools
import operator
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, _mutable_spec

__all__ = [
    "MAX_LOOP_NESTING",
    "MAX_RANGE",
    "MAX_SECONDS",
    "MAX_STEPS",
    "MAX_VALUE",
    "BoundedEnvironment",
    "Budget",
    "TemplateLimit",
    "check_tree",
]

MAX_VALUE = 100_000  # characters of a text, or items of a list, a template may build
MAX_RANGE = 1_000  # items of range()
MAX_POWER_BITS = 4_096  # size of an integer power (about 1,200 digits)
MAX_STEPS = 10_000  # loop iterations, calls and operations in one render
MAX_SECONDS = 1.0  # time of one render
MAX_LOOP_NESTING = 3
MAX_FORMAT_WIDTH = 1_000  # width or precision in a format ('%9d', '{:>9}')

_FORBIDDEN: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Include, "'include' is not allowed in a task text (there are no other templates)"),
    (nodes.Import, "'import' is not allowed in a task text (there are no other templates)"),
    (nodes.FromImport, "'import' is not allowed in a task text (there are no other templates)"),
    (nodes.Extends, "'extends' is not allowed in a task text (there are no other templates)"),
    (nodes.Macro, "macros are not allowed in a task text"),
    (nodes.CallBlock, "call blocks are not allowed in a task text"),
    (nodes.FilterBlock, "filter blocks are not allowed in a task text (use a filter: x|upper)"),
    (nodes.AssignBlock, "block set is not allowed in a task text (use {% set x = ... %})"),
)
_CHANGING = frozenset().union(*(names for _, names in _mutable_spec))
_INTERNAL = frozenset({"mro", "format_map", "gi_frame", "gi_code", "cr_frame", "cr_code"})


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


def budget() -> Budget:
    """The budget of the render under way (a fresh one outside a render, e.g. when folding)."""
    current = _CURRENT.get()
    return current if current is not None else Budget()


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
_SIZE_ARGS = frozenset(
    {"center", "indent", "wordwrap", "truncate", "batch", "slice", "ljust", "rjust", "zfill"}
)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, _SIZED) else 0


def _bounded(value: Any, what: str) -> Any:
    if _size(value) > MAX_VALUE:
        raise TemplateLimit(f"{what} would be longer than {MAX_VALUE:,}")
    return value


def _check_number(value: Any, what: str) -> None:
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


def _check_format(text: str, percent: bool) -> None:
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
        _check_format(left, percent=True)
    try:
        result = _OPERATORS[op](left, right)
    except (OverflowError, decimal.Overflow):
        raise TemplateLimit(f"the result of '{op}' is too large") from None
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except decimal.DecimalException:
        raise TemplateLimit(f"'{op}' cannot be computed for these values") from None
    return _bounded(result, f"the result of '{op}'")


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
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


def _precheck(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse the calls that would build a huge value before they build it."""
    if name in _SIZE_ARGS:
        for arg in (*args, *kwargs.values()):
            _check_number(arg, f"{name}: an argument of")
    if name == "join" and isinstance(value, Iterable) and not isinstance(value, str):
        items = list(value) if not isinstance(value, list | tuple) else value
        separator = args[0] if args and isinstance(args[0], str) else ""
        total = sum(len(i) if isinstance(i, str) else 20 for i in items)
        if total + len(separator) * len(items) > MAX_VALUE:
            raise TemplateLimit(f"join would build a text longer than {MAX_VALUE:,}")
    if name == "replace" and isinstance(value, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = value.count(old) if old else len(value) + 1
        if len(value) + count * len(new) > MAX_VALUE:
            raise TemplateLimit(f"replace would build a text longer than {MAX_VALUE:,}")
    if name == "format" and isinstance(value, str):
        _check_format(value, percent=True)
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
        _precheck(name, value, args[offset + 1 :], kwargs)
        _spend()
        return _bounded(function(*args, **kwargs), f"the result of '{name}'")

    return bounded


# --------------------------------------------------------------------------- the environment
class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox whose operators, calls, loops and ranges are bounded."""

    intercepted_binops = frozenset(_OPERATORS)

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
        _precheck(name, getattr(obj, "__self__", None), args, kwargs)
        return _bounded(super().call(context, obj, *args, **kwargs), f"the result of {name}()")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        _check_format(value.__self__, percent=False)
        return wrapped


# --------------------------------------------------------------------------- load-time checks
class Refused(Exception):
    """A template construct refused when the workflow loads; `line` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def check_tree(tree: nodes.Template) -> None:
    """Refuse what a task text may not do (see the module docstring), then make the tree's
    loops and ``~`` count against the budget. Raises `Refused`."""
    for node in tree.find_all(nodes.Node):
        for kind, message in _FORBIDDEN:
            if isinstance(node, kind):
                raise Refused(message, node.lineno)
        if isinstance(node, nodes.For) and node.recursive:
            raise Refused("recursive loops are not allowed in a task text", node.lineno)
        if isinstance(node, nodes.Getattr) and node.attr in _CHANGING | _INTERNAL:
            verb = "changes a value" if node.attr in _CHANGING else "is internal"
            raise Refused(f"'.{node.attr}' {verb}: not allowed in a task text", node.lineno)
    _check_nesting(tree, 0)
    for node in tree.find_all(nodes.Expr):
        try:
            _fold(node)
        except (TemplateLimit, ArithmeticError, TypeError, ValueError) as e:
            # a constant that fails here fails for every deal alike
            raise Refused(" ".join(str(e).split()) or type(e).__name__, node.lineno) from None
        except _NotConstant:
            continue
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, "crmsync_loop", [], [], None, None, lineno=loop.lineno)
    for node in list(tree.find_all(nodes.Concat)):
        _replace(tree, node, nodes.Filter(nodes.List(node.nodes), "crmsync_concat", [], [], None,
                                          None, lineno=node.lineno))  # fmt: skip


def _check_nesting(node: nodes.Node, depth: int) -> None:
    for child in node.iter_child_nodes():
        inner = depth + isinstance(child, nodes.For)
        if inner > MAX_LOOP_NESTING:
            raise Refused(f"loops nested more than {MAX_LOOP_NESTING} deep", child.lineno)
        _check_nesting(child, inner)


def _replace(tree: nodes.Node, old: nodes.Node, new: nodes.Node) -> None:
    """Put `new` where `old` is in `tree` (a field or an item of a list field)."""
    for parent in tree.find_all(nodes.Node):
        for field in parent.fields:
            value = getattr(parent, field, None)
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return


class _NotConstant(Exception):
    pass


def _fold(node: nodes.Node) -> Any:
    """The value of a constant expression, computed with the bounds (raises when not one)."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        return [_fold(n) for n in node.items]
    if isinstance(node, nodes.Neg):
        return -_fold(node.node)
    if isinstance(node, nodes.BinExpr) and node.operator in _OPERATORS:
        return binop(node.operator, _fold(node.left), _fold(node.right))
    if isinstance(node, nodes.Concat):
        return concat(_fold(n) for n in node.nodes)
    if isinstance(node, nodes.Call) and getattr(node.node, "name", None) == "range":
        values = [_fold(a) for a in node.args]
        if not node.kwargs and all(isinstance(v, int) for v in values):
            return bounded_range(*values)
    if isinstance(node, nodes.Filter | nodes.Call):
        name = node.name if isinstance(node, nodes.Filter) else getattr(node.node, "attr", "")
        for arg in (*node.args, *(k.value for k in node.kwargs)):
            try:
                value = _fold(arg)
            except _NotConstant:
                continue
            if name in _SIZE_ARGS:
                _check_number(value, f"{name}: an argument of")
        if isinstance(node, nodes.Filter) and node.node is not None:
            _fold(node.node)
    if isinstance(node, nodes.Getattr) and node.attr == "format":
        text = getattr(node.node, "value", None)
        if isinstance(node.node, nodes.Const) and isinstance(text, str):
            _check_format(text, percent=False)
    raise _NotConstant
