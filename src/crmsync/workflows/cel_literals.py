"""Text literals a condition compares with a field of few values (`stage_canonical ==
"negotiation"`, `stage in ["Prospecting", "Qualification"]`), found in the condition's parse
tree (celpy's CEL grammar, as `cel_fast` reads it), so that a misspelled stage fails the file
instead of silently matching no deal."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from lark import Token, Tree

_OPERATORS = frozenset(("relation_eq", "relation_ne", "relation_in"))
# Nodes with a single child that only wrap it (precedence levels of the grammar).
_WRAPPERS = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication"}
    | {"unary", "member", "primary"}
)


@dataclass(frozen=True)
class Compared:
    """`value` compared (==, != or in) with `field`, starting at `offset` in the source."""

    field: str
    value: str
    offset: int


def compared_literals(source: str, fields: frozenset[str]) -> list[Compared]:
    """Every text literal `source` compares with one of `fields`, in source order. A condition
    the grammar does not read gives none (the `cel` package has already accepted it)."""
    try:
        tree = parser().parse(source)
    except Exception:  # celpy rejects a few things `cel` accepts: nothing to check then
        return []
    found: list[Compared] = []
    for node in tree.iter_subtrees_topdown():
        kids = list(node.children)
        if node.data != "relation" or len(kids) != 2 or not isinstance(kids[0], Tree):
            continue
        if kids[0].data not in _OPERATORS or len(kids[0].children) != 1:
            continue
        left, right = _leaf(kids[0].children[0]), _leaf(kids[1])
        if kids[0].data == "relation_in":
            items = _items(right)
            if _ident(left) in fields:  # stage in ["a", "b"]
                found += [_compared(str(_ident(left)), t) for t in items if _text(t) is not None]
            elif _text(left) is not None:  # "a" in [stage, ...]
                named = [str(_ident(i)) for i in items if _ident(i) in fields]
                found += [_compared(name, left) for name in named[:1]]
            continue
        for a, b in ((left, right), (right, left)):
            if _ident(a) in fields and _text(b) is not None:
                found.append(_compared(str(_ident(a)), b))
    return sorted(found, key=lambda c: c.offset)


@cache
def parser() -> Any:
    """celpy's CEL parser, built once."""
    from celpy.celparser import CELParser

    return CELParser()


def _leaf(node: Any) -> Any:
    """`node` without the grammar's one-child wrappers around it."""
    while isinstance(node, Tree) and node.data in _WRAPPERS and len(node.children) == 1:
        node = node.children[0]
    return node


def _ident(node: Any) -> str | None:
    if isinstance(node, Tree) and node.data == "ident" and len(node.children) == 1:
        return str(node.children[0])
    return None


def _text(node: Any) -> str | None:
    """The value of a plain quoted text literal (no escapes, no prefix), else None."""
    if not (isinstance(node, Tree) and node.data == "literal" and len(node.children) == 1):
        return None
    token = node.children[0]
    if not isinstance(token, Token) or token.type != "STRING_LIT":
        return None
    text = str(token)
    if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0] or "\\" in text:
        return None
    if text.startswith(text[0] * 3):
        return None
    return text[1:-1]


def _items(node: Any) -> list[Any]:
    """The elements of a list literal `[a, b]`, each without its wrappers; [] for anything else."""
    if not (isinstance(node, Tree) and node.data == "list_lit"):
        return []
    out: list[Any] = []
    for exprlist in node.children:
        if isinstance(exprlist, Tree) and exprlist.data == "exprlist":
            out += [_leaf(e) for e in exprlist.children]
    return out


def _compared(field: str, literal: Tree[Any]) -> Compared:
    token = literal.children[0]
    assert isinstance(token, Token) and token.start_pos is not None
    return Compared(field, str(_text(literal)), token.start_pos)
