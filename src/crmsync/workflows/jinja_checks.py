"""What a task template may not do at all, checked when the workflow loads.

No ``include``/``import``/``extends`` (task texts have no loader), no macros, call or filter
blocks, block ``set`` or ``recursive`` loops, loops nested at most `MAX_LOOP_NESTING` deep, no
attribute that changes a value (``reasons.append``) or is internal (``mro``); and the operations
on constants that would be too large or always fail (``7**(9**9)``, ``range(10**9)``,
``1 / 0``) are reported with their line, computed with the bounds of `jinja_bounds`. Then the
tree's loops and ``~`` are rewritten to count against the render's budget.
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes

from crmsync.workflows.jinja_bounds import (
    OPERATORS,
    SIZE_ARGS,
    TemplateLimit,
    binop,
    bounded_range,
    check_format,
    check_number,
    concat,
)

__all__ = ["MAX_LOOP_NESTING", "Refused", "check_tree"]

MAX_LOOP_NESTING = 3

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
# the methods of list, dict, set and deque that change them (Jinja's immutable sandbox's list)
_CHANGING = frozenset(
    [
        "add",
        "append",
        "appendleft",
        "clear",
        "difference_update",
        "discard",
        "extend",
        "extendleft",
        "insert",
        "intersection_update",
        "pop",
        "popitem",
        "popleft",
        "remove",
        "reverse",
        "rotate",
        "setdefault",
        "sort",
        "symmetric_difference_update",
        "update",
    ]
)
_INTERNAL = frozenset({"mro", "format_map", "gi_frame", "gi_code", "cr_frame", "cr_code"})


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
    if isinstance(node, nodes.BinExpr) and node.operator in OPERATORS:
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
            if name in SIZE_ARGS:
                check_number(value, f"{name}: an argument of")
        if isinstance(node, nodes.Filter) and node.node is not None:
            _fold(node.node)
    if isinstance(node, nodes.Getattr) and node.attr == "format":
        text = getattr(node.node, "value", None)
        if isinstance(node.node, nodes.Const) and isinstance(text, str):
            check_format(text, percent=False)
    raise _NotConstant
