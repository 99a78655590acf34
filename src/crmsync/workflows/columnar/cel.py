"""CEL conditions as polars expressions, for the plain subset: fields and literals compared,
joined by `&&`, `||`, `!` and `? :`, `in` a list of literals, null tests, and `+ - *` on
doubles.

Each condition becomes a boolean column whose null means "not sure here": a null compared for
order, a NaN, a type CEL would refuse. Polars' `&` and `|` are Kleene's, as CEL's are (an error
`|| true` is true, `&& false` is false), so a row is left unsure only when CEL's answer there
would depend on the error. Unsure rows go to the `cel` package one by one (`engine`), which
stays the reference; a condition outside the subset is not compiled at all (None) and its rule
runs on the per-deal engine. The expression is parsed by celpy's grammar, as `cel_fast` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from lark import Token, Tree

from crmsync.workflows.cel_fast import cel_parser, chain, list_literal, literal_value

# CEL types of the frame's columns, as `to_cel` hands values to CEL.
DOUBLE, INT, STRING, BOOL, NULL = "double", "int", "string", "bool", "null"
_EXACT = 2**53


class Unsupported(Exception):
    """Outside the subset: the rule runs on the per-deal engine."""


Typed = tuple[pl.Expr, str]


def compile_condition(source: str, types: Mapping[str, str]) -> pl.Expr | None:
    """The condition over the frame (`types`: each readable variable's CEL type), or None."""
    try:
        expr, kind = _node(cel_parser().parse(source), types)
    except Unsupported:
        return None
    except Exception:  # celpy rejects what `cel` accepts: leave it to the per-deal engine
        return None
    if kind != BOOL:
        return None
    return expr


def _node(tree: Any, types: Mapping[str, str]) -> Typed:
    if not isinstance(tree, Tree):
        raise Unsupported
    kids = list(tree.children)
    data = tree.data
    wrappers = ("expr", "conditionalor", "conditionaland", "relation", "addition")
    if data in wrappers and len(kids) == 1:
        return _node(kids[0], types)
    if data in ("multiplication", "member", "primary", "paren_expr", "unary") and len(kids) == 1:
        return _node(kids[0], types)
    if data == "expr" and len(kids) == 3:
        cond, then, other = (_node(k, types) for k in kids)
        if cond[1] != BOOL or then[1] != other[1] or then[1] == NULL:
            raise Unsupported
        return pl.when(cond[0].is_null()).then(None).when(cond[0]).then(then[0]).otherwise(
            other[0]
        ), then[1]
    if data in ("conditionalor", "conditionaland") and len(kids) == 2:
        terms = [_node(k, types) for k in chain(tree)]
        if any(kind != BOOL for _, kind in terms):
            raise Unsupported
        out = terms[0][0]
        for expr, _ in terms[1:]:
            out = (out | expr) if data == "conditionalor" else (out & expr)
        return out, BOOL
    if data == "unary" and len(kids) == 2:
        op = kids[0]
        if isinstance(op, Tree) and op.data == "unary_not" and not op.children:
            expr, kind = _node(kids[1], types)
            if kind != BOOL:
                raise Unsupported
            return ~expr, BOOL
        raise Unsupported
    if data == "relation" and len(kids) == 2 and isinstance(kids[0], Tree):
        inner = kids[0].children
        if len(inner) != 1:
            raise Unsupported
        op = kids[0].data
        left = _node(inner[0], types)
        if op == "relation_in":
            return _in(left, kids[1])
        return _relation(op, left, _node(kids[1], types))
    if data in ("addition", "multiplication") and len(kids) == 2 and isinstance(kids[0], Tree):
        inner = kids[0].children
        ops = {"addition_add": "+", "addition_sub": "-", "multiplication_mul": "*"}
        op = ops.get(kids[0].data)
        if op is None or len(inner) != 1:
            raise Unsupported
        (a, ka), (b, kb) = _node(inner[0], types), _node(kids[1], types)
        if ka != DOUBLE or kb != DOUBLE:
            raise Unsupported  # int arithmetic can overflow, strings concatenate: not here
        value = a + b if op == "+" else a - b if op == "-" else a * b
        return value, DOUBLE
    if data == "ident" and len(kids) == 1:
        name = str(kids[0])
        found = types.get(name)
        if found is None:
            raise Unsupported
        return pl.col(name), found
    if data == "literal" and len(kids) == 1 and isinstance(kids[0], Token):
        try:
            value = literal_value(kids[0])
        except Exception as e:
            raise Unsupported from e
        return _constant(value)
    raise Unsupported


def _constant(value: Any) -> Typed:
    if value is None:
        return pl.lit(None), NULL
    if value is True or value is False:
        return pl.lit(value, dtype=pl.Boolean), BOOL
    if isinstance(value, int):
        if not -_EXACT <= value <= _EXACT:
            raise Unsupported
        return pl.lit(value, dtype=pl.Int64), INT
    if isinstance(value, float):
        return pl.lit(value, dtype=pl.Float64), DOUBLE
    if isinstance(value, str):
        return pl.lit(value, dtype=pl.String), STRING
    raise Unsupported


def _unsure_if_nan(expr: pl.Expr, kind: str, result: pl.Expr) -> pl.Expr:
    """CEL has no order for NaN (and `cel` may answer its equality otherwise): leave it."""
    if kind != DOUBLE:
        return result
    return pl.when(expr.is_nan()).then(None).otherwise(result)


def _relation(op: str, left: Typed, right: Typed) -> Typed:
    (a, ka), (b, kb) = left, right
    numbers = {ka, kb} <= {INT, DOUBLE}
    if op in ("relation_eq", "relation_ne"):
        negate = op == "relation_ne"
        if NULL in (ka, kb):
            if ka == kb:
                return pl.lit(not negate), BOOL
            value = a if kb == NULL else b
            test = value.is_not_null() if negate else value.is_null()
            return test, BOOL
        if ka != kb and not numbers:
            raise Unsupported
        a, b = (a.cast(pl.Float64), b.cast(pl.Float64)) if ka != kb else (a, b)
        # null == "x" is false, null == null is true: a null is never unsure here
        equal = (
            pl.when(a.is_null() & b.is_null())
            .then(True)
            .when(a.is_null() | b.is_null())
            .then(False)
            .otherwise(a == b)
        )
        kind = DOUBLE if numbers else ka
        result = _unsure_if_nan(a, kind, _unsure_if_nan(b, kind, equal))
        return (~result if negate else result), BOOL
    ops = {"relation_lt": "lt", "relation_le": "le", "relation_gt": "gt", "relation_ge": "ge"}
    name = ops.get(op)
    if name is None or (ka != kb and not numbers) or ka in (BOOL, NULL):
        raise Unsupported
    if ka != kb:
        a, b = a.cast(pl.Float64), b.cast(pl.Float64)
    compared = getattr(a, name)(b)  # a null operand gives null: unsure (CEL: an error)
    kind = DOUBLE if numbers else ka
    return _unsure_if_nan(a, kind, _unsure_if_nan(b, kind, compared)), BOOL


def _in(left: Typed, container: Any) -> Typed:
    items = list_literal(container)
    if items is None:
        raise Unsupported
    kinds = {_constant(v)[1] for v in items}
    expr, kind = left
    if len(kinds) > 1 or (kinds and kinds != {kind}) or kind not in (STRING, INT, BOOL):
        raise Unsupported
    return pl.when(expr.is_null()).then(None).otherwise(expr.is_in(items)), BOOL
