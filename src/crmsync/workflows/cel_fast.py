"""A fast path for the plainest CEL conditions: comparisons of fields with literals, joined by
`&&`, `||`, `!` and `? :`.

Calling the `cel` package costs some microseconds per record, mostly in handing it the values;
at 100,000 deals a second that is most of the budget. Conditions written from the rule kinds'
reference are nearly all plain comparisons, so they are translated once (the expression parsed
by celpy's CEL grammar, not by a parser of our own) into Python closures.

The closures answer only when CEL's answer is beyond doubt: operands of one plain type (int,
double, string, bool) or a null check. Anything else (mixed int and double, a null compared
for order, a timestamp, an error to be absorbed by `||`) raises `Unsure`, and the caller asks
the `cel` package, which stays the reference. A test compares both on generated records.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from lark import Token, Tree

Fast = Callable[[Mapping[str, Any]], Any]


class Unsure(Exception):
    """This record needs the full CEL evaluator."""


class _Unsupported(Exception):
    """The expression uses something the fast path does not translate."""


_UNSURE = Unsure()
_PLAIN = (int, float, str, bool)  # exact types only: bool is not an int here
_ORDERED = (int, float, str)
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)")
_SIMPLE_STRING = re.compile(r"""("[^"\\\n]*"|'[^'\\\n]*')""")


def compile_fast(source: str, variables: frozenset[str]) -> Fast | None:
    """Closures for `source`, reading `variables` from a CEL context mapping; None when the
    expression uses anything beyond the plain subset (it then always goes to `cel`)."""
    try:
        tree = _parser().parse(source)
        return _node(tree, variables)
    except _Unsupported:
        return None
    except Exception:  # celpy rejects what `cel` accepts: leave it to `cel`
        return None


@cache
def _parser() -> Any:
    from celpy.celparser import CELParser

    return CELParser()


def _children(tree: Tree[Any]) -> list[Any]:
    return list(tree.children)


def _node(tree: Any, names: frozenset[str]) -> Fast:
    if not isinstance(tree, Tree):
        raise _Unsupported
    kids = _children(tree)
    data = tree.data
    if data in ("expr",):
        if len(kids) == 1:
            return _node(kids[0], names)
        if len(kids) == 3:
            return _ternary(*(_node(k, names) for k in kids))
        raise _Unsupported
    if data in ("conditionalor", "conditionaland"):
        if len(kids) == 1:
            return _node(kids[0], names)
        if len(kids) == 2:
            terms = [_node(k, names) for k in _chain(tree)]
            return _junction(terms, decisive=data == "conditionalor")
        raise _Unsupported
    if data == "relation":
        if len(kids) == 1:
            return _node(kids[0], names)
        if len(kids) == 2 and isinstance(kids[0], Tree) and len(kids[0].children) == 1:
            op = kids[0].data
            left = _node(kids[0].children[0], names)
            if op == "relation_in":
                return _in(left, kids[1])
            return _relation(op, left, _node(kids[1], names))
        raise _Unsupported
    if data in ("addition", "multiplication", "member"):
        if len(kids) == 1:
            return _node(kids[0], names)
        raise _Unsupported
    if data == "unary":
        if len(kids) == 1:
            return _node(kids[0], names)
        if (
            len(kids) == 2
            and isinstance(kids[0], Tree)
            and kids[0].data == "unary_not"
            and not kids[0].children
        ):
            return _not(_node(kids[1], names))
        raise _Unsupported
    if data == "primary" and len(kids) == 1:
        return _node(kids[0], names)
    if data == "paren_expr" and len(kids) == 1:
        return _node(kids[0], names)
    if data == "ident" and len(kids) == 1 and str(kids[0]) in names:
        return _Variable(str(kids[0]))
    if data == "literal" and len(kids) == 1 and isinstance(kids[0], Token):
        return _Literal(_literal(kids[0]))
    raise _Unsupported


class _Variable:
    """A field read from the context (a class, so that comparisons can see which field)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, c: Mapping[str, Any]) -> Any:
        value = c.get(self.name, _UNSURE)
        if value is _UNSURE:
            raise _UNSURE
        return value


class _Literal:
    """A constant (a class, so that comparisons can see it is one)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, c: Mapping[str, Any]) -> Any:
        return self.value


def _literal(token: Token) -> Any:
    text = str(token)
    kind = token.type
    if kind == "NULL_LIT":
        return None
    if kind == "BOOL_LIT":
        return text == "true"
    if kind == "INT_LIT" and _INT.fullmatch(text):
        value = int(text)
        if -(2**63) <= value < 2**63:
            return value
    if kind == "FLOAT_LIT" and _FLOAT.fullmatch(text):
        return float(text)
    if kind == "STRING_LIT" and _SIMPLE_STRING.fullmatch(text):
        return text[1:-1]
    raise _Unsupported


def _boolean(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _UNSURE


def _ternary(condition: Fast, then: Fast, otherwise: Fast) -> Fast:
    return lambda c: then(c) if _boolean(condition(c)) else otherwise(c)


def _chain(tree: Tree[Any]) -> list[Any]:
    """The terms of `a || b || c` (or of `&&`), left to right: the grammar nests them to the
    left, and one loop over them is cheaper than a closure per operator."""
    terms: list[Any] = []
    node: Any = tree
    while isinstance(node, Tree) and node.data == tree.data and len(node.children) == 2:
        terms.append(node.children[1])
        node = node.children[0]
    terms.append(node)
    terms.reverse()
    return terms


def _junction(terms: list[Fast], decisive: bool) -> Fast:
    """`||` (decisive: true) or `&&` (decisive: false) over terms that are each true or false:
    the first decisive value is the answer; anything but true or false (an error CEL might
    absorb, a non-boolean) defers."""
    items = tuple(terms)
    answer, other = decisive, not decisive

    def junction(c: Mapping[str, Any]) -> bool:
        for term in items:
            value = term(c)
            if value is answer:
                return decisive
            if value is not other:
                raise _UNSURE
        return not decisive

    return junction


def _not(operand: Fast) -> Fast:
    return lambda c: not _boolean(operand(c))


def _relation(op: str, left: Fast, right: Fast) -> Fast:
    if isinstance(left, _Variable) and isinstance(right, _Literal):
        return _field_against(op, left.name, right.value)
    if op in ("relation_eq", "relation_ne"):
        negate = op == "relation_ne"

        def equal(c: Mapping[str, Any]) -> bool:
            a, b = left(c), right(c)
            kind = a.__class__
            if (kind is b.__class__ and (kind in _PLAIN or a is None)) or _numbers(a, b):
                return (a == b) is not negate
            if a is None or b is None:  # null against a plain value: never equal
                other = b if a is None else a
                if other.__class__ in _PLAIN:
                    return negate
            raise _UNSURE

        return equal
    compare = _COMPARE.get(op)
    if compare is None:
        raise _Unsupported
    test = compare

    def ordered(c: Mapping[str, Any]) -> bool:
        a, b = left(c), right(c)
        kind = a.__class__
        if ((kind is b.__class__ and kind in _ORDERED) or _numbers(a, b)) and a == a and b == b:
            return test(a, b)  # type: ignore[no-any-return]
        raise _UNSURE  # NaN too: CEL has no order for it (an error, not false)

    return ordered


def _field_against(op: str, name: str, literal: Any) -> Fast:
    """`field OP literal`, the commonest shape, in one closure."""
    kind = literal.__class__
    if op in ("relation_eq", "relation_ne"):
        negate = op == "relation_ne"
        if literal is None:

            def is_null(c: Mapping[str, Any]) -> bool:
                value = c.get(name, _UNSURE)
                if value is None:
                    return not negate
                if value.__class__ in _PLAIN:
                    return negate
                raise _UNSURE

            return is_null
        test = operator.ne if negate else operator.eq

        def against(c: Mapping[str, Any]) -> bool:
            value = c.get(name, _UNSURE)
            if value.__class__ is kind or _numbers(value, literal):
                return test(value, literal)  # type: ignore[no-any-return]
            if value is None:
                return negate  # null == "x" is false
            raise _UNSURE

        return against
    found = _COMPARE.get(op)
    if found is None or kind not in _ORDERED:
        raise _Unsupported
    order = found

    def ordered(c: Mapping[str, Any]) -> bool:
        value = c.get(name, _UNSURE)
        if (value.__class__ is kind or _numbers(value, literal)) and value == value:
            return order(value, literal)  # type: ignore[no-any-return]
        raise _UNSURE  # NaN too: CEL has no order for it (an error, not false)

    return ordered


_EXACT = 2**53  # ints up to this size are exact as doubles, however CEL compares them


def _numbers(a: Any, b: Any) -> bool:
    """An int and a double, compared as numbers (CEL does; Python compares them exactly)."""
    if a.__class__ is int and b.__class__ is float:
        return -_EXACT <= a <= _EXACT
    if a.__class__ is float and b.__class__ is int:
        return -_EXACT <= b <= _EXACT
    return False


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "relation_lt": operator.lt,
    "relation_le": operator.le,
    "relation_gt": operator.gt,
    "relation_ge": operator.ge,
}


def _in(left: Fast, container: Any) -> Fast:
    """`x in [literal, ...]` with literals of one plain type."""
    items = _list_literal(container)
    if items is None:
        raise _Unsupported
    kinds = {v.__class__ for v in items}
    if len(kinds) > 1 or not kinds <= set(_PLAIN):
        raise _Unsupported
    kind = next(iter(kinds)) if kinds else None
    members = frozenset(items)

    def contains(c: Mapping[str, Any]) -> bool:
        value = left(c)
        if value.__class__ is kind:
            return value in members
        raise _UNSURE

    return contains


def _list_literal(tree: Any) -> list[Any] | None:
    """The values of a list of plain literals (through the single-child wrappers), or None."""
    while isinstance(tree, Tree) and tree.data != "list_lit":
        if len(tree.children) != 1:
            return None
        tree = tree.children[0]
    if not isinstance(tree, Tree):
        return None
    if not tree.children:
        return []
    exprlist = tree.children[0]
    if not isinstance(exprlist, Tree) or exprlist.data != "exprlist":
        return None
    values = []
    for item in exprlist.children:
        node = item
        while isinstance(node, Tree) and node.data != "literal":
            if len(node.children) != 1:
                return None
            node = node.children[0]
        if not isinstance(node, Tree) or not isinstance(node.children[0], Token):
            return None
        try:
            values.append(_literal(node.children[0]))
        except _Unsupported:
            return None
    return values


# The grammar's walk, for the columnar compiler of the same subset (columnar/cel.py).
cel_parser = _parser
chain = _chain
list_literal = _list_literal
literal_value = _literal
