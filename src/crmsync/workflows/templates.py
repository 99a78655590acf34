"""Task texts: admin-written Jinja2 templates, checked when the workflow loads.

``"{{ name }}: no activity for {{ days_since_activity|days }}"`` becomes a task subject. The
environment is Jinja2's immutable sandbox (templates come from workflow files, not developers:
no private attributes, no changing the values a template is given), with autoescaping off (CRM
task text is plain text, not HTML) and `StrictUndefined`, so a misspelled name is an error
rather than an empty string. Compiling checks syntax, names, filters and ``_private`` attribute
access up front; an empty value (None) renders as an empty string.

Every template runs in `jinja_bounds.BoundedEnvironment`: what it may build and how long it
may run are bounded, and what cannot be bounded (other templates, macros, recursive loops) is
refused here when the workflow loads. A render gives at most `limit` characters (longer text is
cut and ends with an ellipsis).

Filters for sales text: ``money`` (``USD 12,500``: the deal's own currency, read from the
record's ``currency`` field, or ``money("EUR")``), ``days`` (completed days: ``23 days``, ``1
day``) and ``date`` (``2026-11-20``, or ``date("%d %b %Y")``); `sales_filters` is the one number
formatter, the rules' reasons use it too. Each renders None as an empty string, so ``{{
amount|money or "no amount" }}`` gives a fallback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Generator, Mapping
from types import TracebackType
from typing import Any, cast

import jinja2
from jinja2 import StrictUndefined, meta, nodes

from crmsync.model.text import cut
from crmsync.workflows.expressions import suggest
from crmsync.workflows.jinja_bounds import MAX_VALUE, BoundedEnvironment, TemplateLimit, rendering
from crmsync.workflows.jinja_checks import Refused, check_tree
from crmsync.workflows.sales_filters import FILTERS, date_filter, days, money

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


def _finalize(value: Any) -> Any:
    """An empty field renders as nothing rather than "None"."""
    return "" if value is None else value


@jinja2.pass_context
def _money_of_the_deal(context: jinja2.runtime.Context, value: Any, *currency: Any) -> str:
    """``money`` in a template: in the record's currency unless one is given."""
    return money(value, *(currency or (context.get("currency"),)))


def _environment() -> BoundedEnvironment:
    env = BoundedEnvironment(
        autoescape=False,
        undefined=StrictUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
    )
    env.add_filters({**FILTERS, "money": _money_of_the_deal})
    return env


_ENV = _environment()


def _available(kind: str) -> str:
    """` (available: ...)`: the filters (crmsync's first) or tests a template may use."""
    if kind == "filter":
        ours = sorted(FILTERS)
        jinja = sorted(n for n in _ENV.filters if n not in FILTERS and not n.startswith("crmsync_"))
        return f" (available: {', '.join(ours)}; and Jinja's {', '.join(jinja)})"
    return f" (available: {', '.join(sorted(n for n in _ENV.tests if n.isidentifier()))})"


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

    def render(self, context: Mapping[str, Any], limit: int = MAX_VALUE) -> str:
        """The text for one record (raw values or `cel_context` ones), cut to `limit`
        characters with an ellipsis; raises `TemplateError`."""
        fast = self._fast
        if fast is not None:
            try:
                return cut(fast(context), limit)
            except Exception:  # Jinja renders it again below, and says why it fails
                pass
        try:
            return rendering(lambda: self._render(context, limit))
        except Exception as e:
            raise TemplateError(
                f"cannot render: {_one_line(_runtime_message(e, self.source))}",
                _template_line(e.__traceback__),
                multiline=self._multiline,
            ) from e

    def _render(self, context: Mapping[str, Any], limit: int) -> str:
        """Jinja's render, reading its output only up to `limit` (the rest is never made)."""
        parts: list[str] = []
        size = 0
        chunks = cast(Generator[str], self._template.generate(context))
        try:
            for chunk in chunks:
                parts.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
        finally:
            chunks.close()
        return cut("".join(parts), limit)


# the types (as load.variables names them) each sales filter can take
_FILTER_TYPES = {
    "money": ("int", "float", "decimal"),
    "days": ("int", "float", "decimal"),
    "date": ("date", "datetime", "str"),
}
_TYPE_WORDS = {
    "str": "text",
    "bool": "true/false",
    "list": "a list",
    "map": "a map",
    "int": "a number",
    "float": "a number",
    "decimal": "a number",
    "date": "a date",
    "datetime": "a timestamp",
}


def compile_template(source: str, variables: Collection[str]) -> Template:
    """Parse and check one template; `variables` are the names a record provides (see
    `_compile`); a template nested too deeply to walk is refused too."""
    try:
        return _compile(source, variables)
    except (RecursionError, MemoryError):
        raise TemplateError("nested too deeply", None) from None


def _compile(source: str, variables: Collection[str]) -> Template:
    """Parse and check one template; `variables` are the names a record provides.

    Raises `TemplateError` (one line) for a syntax error, an unknown name, filter or test (with
    a did-you-mean), access to a ``_private`` attribute, a sales filter given a field of the
    wrong type (when `variables` maps names to types), or what `jinja_checks` refuses.
    """
    multiline = "\n" in source.rstrip("\n")

    def error(message: str, line: int | None, column: int | None = None) -> TemplateError:
        return TemplateError(message, line, column, multiline=multiline)

    try:
        ast = _ENV.parse(source)
    except jinja2.TemplateSyntaxError as e:
        raise error(f"syntax error: {_one_line(e.message or str(e))}", e.lineno) from None
    except (RecursionError, MemoryError):
        raise error("nested too deeply", None) from None

    for node in ast.find_all((nodes.Filter, nodes.Test)):
        kind, table = (
            ("filter", _ENV.filters) if isinstance(node, nodes.Filter) else ("test", _ENV.tests)
        )
        if node.name not in table:
            hint = suggest(node.name, table) or _available(kind)
            raise error(f"unknown {kind} '{node.name}'{hint}", node.lineno)
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
    if isinstance(variables, Mapping):
        _check_filter_types(ast, variables, error)
    used = {n for n in referenced if n in variables}
    if "currency" in variables and any(n.name == "money" for n in ast.find_all(nodes.Filter)):
        used.add("currency")  # money shows the record's currency
    names = tuple(sorted(used))
    fast = _fast_renderer(ast, frozenset(names))
    try:
        check_tree(ast)
        ast.set_environment(_ENV)
        template = _ENV.from_string(ast)
    except Refused as e:
        raise error(e.message, e.line) from None
    except jinja2.TemplateError as e:
        raise error(_one_line(e.message or str(e)), getattr(e, "lineno", None)) from None
    except (RecursionError, MemoryError, SyntaxError, TemplateLimit):
        raise error("too complex to compile", None) from None
    return Template(source, names, template, fast)


def _check_filter_types(
    ast: nodes.Template,
    types: Mapping[str, str],
    error: Callable[[str, int | None, int | None], TemplateError],
) -> None:
    """``name|money``: a sales filter applied straight to a field that can never suit it."""
    for node in ast.find_all(nodes.Filter):
        wanted = _FILTER_TYPES.get(node.name)
        if wanted is None or not isinstance(node.node, nodes.Name):
            continue
        kind = types.get(node.node.name)
        if kind is not None and kind not in wanted:
            what = "a number" if node.name != "date" else "a date"
            raise error(
                f"{node.name} needs {what}, but '{node.node.name}' is "
                f"{_TYPE_WORDS.get(kind, kind)}",
                node.lineno,
                None,
            )


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
    if node.name == "money" and not args:  # in the record's currency, as Jinja's filter

        def in_currency(c: Mapping[str, Any]) -> str:
            return money(value(c), c.get("currency"))

        return in_currency
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
