"""Task texts: admin-written Jinja2 templates, checked when the workflow loads.

``"{{ name }}: no activity for {{ days_since_activity|days }}"`` becomes a task subject. The
environment is Jinja2's immutable sandbox (templates come from workflow files, not developers:
no private attributes, no changing the values a template is given), with autoescaping off (CRM
task text is plain text, not HTML) and `StrictUndefined`, so a misspelled name is an error
rather than an empty string. Compiling checks syntax, names, filters and ``_private`` attribute
access up front; an empty value (None) renders as an empty string.

Filters for sales text: ``money`` (``12,500.00``), ``days`` (``23 days``, ``1 day``) and
``date`` (``2026-11-20``, or ``date("%d %b %Y")``). Each renders None as an empty string, so
``{{ amount|money or "no amount" }}`` gives a fallback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crmsync.workflows.expressions import suggest

__all__ = ["Template", "TemplateError", "compile_template", "date_filter", "days", "money"]


class TemplateError(ValueError):
    """A task template that cannot be used, or could not be rendered for one record.

    `line` is 1-based within the template and `column` 1-based within that line (either None
    when unknown). `str()` is the message, led by ``line N:`` when the template has several
    lines, so the caller can prefix the file position of the template itself.
    """

    message: str
    line: int | None
    column: int | None

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        *,
        multiline: bool = False,
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.multiline = multiline
        super().__init__(f"line {line}: {message}" if multiline and line is not None else message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Keep line and column when pickled."""
        return (_rebuild, (type(self), self.message, self.line, self.column, self.multiline))


def _rebuild(
    cls: type[TemplateError], message: str, line: int | None, column: int | None, multiline: bool
) -> TemplateError:
    return cls(message, line, column, multiline=multiline)


# --------------------------------------------------------------------------- filters


def _check_defined(value: Any) -> None:
    """Raise Jinja's own "'x' is undefined" for a missing name passed to a filter."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError here


def _number(value: Any, name: str) -> Decimal:
    """A Decimal from a number (or numeric text), for exact rounding in filters."""
    if isinstance(value, bool):
        raise TypeError(f"{name} needs a number, got {value}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            pass
    raise TypeError(f"{name} needs a number, got {value!r}")


def money(value: Any) -> str:
    """An amount with thousands separators and cents, rounded half up: ``12,500.00``."""
    _check_defined(value)
    if value is None:
        return ""
    amount = _number(value, "money")
    if not amount.is_finite():
        raise ValueError(f"money needs a finite number, got {value}")
    return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"


def days(value: Any) -> str:
    """A number of days, rounded half up: ``1 day``, ``23 days`` (a timedelta works too)."""
    _check_defined(value)
    if value is None:
        return ""
    if isinstance(value, timedelta):
        value = value.total_seconds() / 86400
    if value.__class__ is float and 0.0 <= value < 1e9:  # ulp far below the 1e-6 margin
        whole, fraction = divmod(value, 1.0)
        if abs(fraction - 0.5) > 1e-6:  # clear of a tie: no need for exact decimal rounding
            n = int(whole) + (fraction > 0.5)
            return f"{n} day" if n == 1 else f"{n} days"
    number = _number(value, "days")
    if not number.is_finite():
        raise ValueError(f"days needs a finite number, got {value}")
    whole = int(number.to_integral_value(rounding=ROUND_HALF_UP))
    return f"{whole} day" if abs(whole) == 1 else f"{whole} days"


def date_filter(value: Any, format: str = "%Y-%m-%d") -> str:
    """A date or timestamp (or ISO text) as ``2026-11-20``; timestamps in their own timezone."""
    _check_defined(value)
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"date needs a date, got {value!r}") from None
    if not isinstance(value, date):
        raise TypeError(f"date needs a date, got {value!r}")
    return value.strftime(format)


FILTERS = {"money": money, "days": days, "date": date_filter}


def _finalize(value: Any) -> Any:
    """An empty field renders as nothing rather than "None"."""
    return "" if value is None else value


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=False,
        undefined=StrictUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


_ENV = _environment()


# --------------------------------------------------------------------------- compiling


class Template:
    """A checked task template; `render` fills it in for one record."""

    __slots__ = ("_fast", "_multiline", "_template", "source", "variables")

    source: str
    variables: tuple[str, ...]

    def __init__(
        self,
        source: str,
        variables: tuple[str, ...],
        template: jinja2.Template,
        fast: Callable[[Mapping[str, Any]], str] | None = None,
    ) -> None:
        self.source = source
        self.variables = variables  # the record fields it references, sorted
        self._template = template
        self._multiline = "\n" in source.rstrip("\n")
        self._fast = fast

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    def render(self, context: Mapping[str, Any]) -> str:
        """The text for one record (raw values or `cel_context` ones); raises `TemplateError`."""
        fast = self._fast
        if fast is not None:
            try:
                return fast(context)
            except Exception:  # Jinja renders it again below, and says why it fails
                pass
        try:
            return self._template.render(context)
        except Exception as e:
            raise TemplateError(
                f"cannot render: {_one_line(_runtime_message(e, self.source))}",
                _template_line(e.__traceback__),
                multiline=self._multiline,
            ) from e


def compile_template(source: str, variables: Collection[str]) -> Template:
    """Parse and check one template; `variables` are the names a record provides.

    Raises `TemplateError` (one line) for a syntax error, an unknown name, filter or test (with
    a did-you-mean), or access to a ``_private`` attribute.
    """
    multiline = "\n" in source.rstrip("\n")

    def error(message: str, line: int | None, column: int | None = None) -> TemplateError:
        return TemplateError(message, line, column, multiline=multiline)

    try:
        ast = _ENV.parse(source)
    except jinja2.TemplateSyntaxError as e:
        raise error(f"syntax error: {_one_line(e.message or str(e))}", e.lineno) from None

    for node in ast.find_all((nodes.Filter, nodes.Test)):
        kind, table = (
            ("filter", _ENV.filters) if isinstance(node, nodes.Filter) else ("test", _ENV.tests)
        )
        if node.name not in table:
            raise error(f"unknown {kind} '{node.name}'{suggest(node.name, table)}", node.lineno)
    known = set(variables) | set(_ENV.globals)
    try:
        referenced = meta.find_undeclared_variables(ast)
    except jinja2.TemplateError as e:
        raise error(_one_line(e.message or str(e)), getattr(e, "lineno", None)) from None
    for name in sorted(referenced, key=lambda n: (_first_line(ast, n), n)):
        if name not in known:
            line = _first_line(ast, name)
            raise error(
                f"unknown variable '{name}'{suggest(name, variables)}",
                line,
                _column(source, line, name),
            )
    private: list[tuple[object, int]] = [(n.attr, n.lineno) for n in ast.find_all(nodes.Getattr)]
    private += [(_const(n.arg), n.lineno) for n in ast.find_all(nodes.Getitem)]
    for key, line in sorted(private, key=lambda p: p[1]):
        if isinstance(key, str) and key.startswith("_"):
            raise error(f"access to '{key}' is not allowed", line)
    try:
        template = _ENV.from_string(ast)
    except jinja2.TemplateError as e:
        raise error(_one_line(e.message or str(e)), getattr(e, "lineno", None)) from None
    names = tuple(sorted(n for n in referenced if n in variables))
    return Template(source, names, template, _fast_renderer(ast, frozenset(names)))


# --------------------------------------------------------------------------- the fast path
# Most task texts are text, names, the sales filters and `or`: for those, the template's syntax
# tree is turned into plain closures once (nothing is `eval`ed), which renders some ten times
# faster than Jinja's own machinery (a context object per render). The result is exactly
# Jinja's: each output is `str(finalize(value))` and the parts are joined. Anything else, and any
# render that fails on the fast path, goes through Jinja, which then also explains the failure.
_Expr = Callable[[Mapping[str, Any]], Any]
_FAST_FILTERS: dict[str, Callable[..., Any]] = {
    "money": money,
    "days": days,
    "date": date_filter,
}


def _fast_renderer(
    ast: nodes.Template, names: frozenset[str]
) -> Callable[[Mapping[str, Any]], str] | None:
    """Closures rendering `ast` like Jinja does, or None when it uses more than the fast path."""
    parts: list[str | _Expr] = []
    for node in ast.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
                continue
            expr = _fast_expr(child, names)
            if expr is None:
                return None
            parts.append(expr)
    if all(isinstance(p, str) for p in parts):  # plain text: the same every time
        constant = "".join(p for p in parts if isinstance(p, str))
        return lambda c: constant
    pieces = tuple((p, None) if isinstance(p, str) else ("", p) for p in parts)
    if len(pieces) == 1 and pieces[0][1] is not None:
        only = pieces[0][1]
        return lambda c: str(_finalize(only(c)))

    def render(context: Mapping[str, Any]) -> str:
        return "".join(
            [text if expr is None else str(_finalize(expr(context))) for text, expr in pieces]
        )

    return render


def _fast_expr(node: nodes.Node, names: frozenset[str]) -> _Expr | None:
    """One expression as a closure over the record, or None when it is not a simple one."""
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in names:
        name = node.name
        return lambda c: c[name]
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda c: value
    if isinstance(node, nodes.Or | nodes.And):
        left, right = _fast_expr(node.left, names), _fast_expr(node.right, names)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.Or):
            return lambda c: left(c) or right(c)
        return lambda c: left(c) and right(c)
    if isinstance(node, nodes.Not):
        inner = _fast_expr(node.node, names)
        return None if inner is None else (lambda c: not inner(c))
    if not isinstance(node, nodes.Filter) or node.node is None:
        return None
    if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None:
        return None
    if not all(isinstance(a, nodes.Const) for a in node.args):
        return None
    args = tuple(_const(a) for a in node.args)
    value = _fast_expr(node.node, names)
    if value is None:
        return None
    if node.name in _FAST_FILTERS:
        function = _FAST_FILTERS[node.name]
        return lambda c: function(value(c), *args)
    if node.name == "join" and len(args) <= 1:  # Jinja's join without autoescaping
        separator = str(args[0]) if args else ""
        return lambda c: separator.join(map(str, value(c)))
    return None


def _const(node: nodes.Node) -> object:
    return node.value if isinstance(node, nodes.Const) else None


def _first_line(ast: nodes.Template, name: str) -> int:
    lines = [n.lineno for n in ast.find_all(nodes.Name) if n.name == name]
    return min(lines) if lines else 1


def _column(source: str, line: int, name: str) -> int | None:
    """Where `name` appears on `line` (the first time), 1-based."""
    lines = source.split("\n")
    if not 0 < line <= len(lines):
        return None
    found = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", lines[line - 1])
    return None if found is None else found.start() + 1


def _one_line(text: str) -> str:
    return " ".join(text.split())


_NO_KEY = re.compile(r"^'dict object' has no attribute '([^']*)'$")


def _runtime_message(error: Exception, source: str) -> str:
    """What went wrong while rendering, in admin terms where the cause is a common one."""
    text = (error.message if isinstance(error, jinja2.TemplateError) else str(error)) or ""
    missing = _NO_KEY.match(text)
    if missing is not None:
        key = missing[1]
        owner = re.search(rf"([A-Za-z_]\w*)\s*\.\s*{re.escape(key)}\b", source)
        guard = f"{owner[1]}.{key}" if owner is not None else key
        return f"no '{key}' in this record (guard with {{% if {guard} is defined %}})"
    return text or type(error).__name__


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line being rendered when it failed (Jinja rewrites its frames to it)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
