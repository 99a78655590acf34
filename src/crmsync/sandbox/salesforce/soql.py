"""The sandbox's SOQL engine: parse a query, check it against the schema, evaluate it in memory.

Supported subset (anything else is refused with MALFORMED_QUERY, as Salesforce would word it):

    SELECT path[, path...] | COUNT()  FROM Object
        [WHERE condition]  [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST][, ...]]  [LIMIT n]

- path: `Field` or `Relationship.Field` (parent relationships, several hops allowed, e.g.
  `Opportunity.Account.Name` on OpportunityHistory). A polymorphic relationship (Task.What) is
  resolved by the referenced id's key prefix; it must be the last hop and the field must exist,
  with one type, on every schema sObject it can point to (as with Salesforce's `Name` entity).
- condition: `path op literal` with op in = != <> < <= > >=, `path LIKE 'pat'`,
  `path [NOT] IN (literal, ...)`, NOT, AND, OR and parentheses. As in SOQL, AND and OR may not be
  mixed without parentheses.
- literals: 'strings' with backslash escapes, numbers, true/false, null, dates (2026-11-20),
  datetimes (2026-11-20T08:15:00Z, ...+0000, ...+01:00), TODAY, YESTERDAY, TOMORROW,
  LAST_N_DAYS:n (today and the n days before it) and NEXT_N_DAYS:n (the n days after today).
  Relative dates are fixed when the query is parsed, from the `today` clock given to `parse`.

Semantics follow Salesforce: string =, !=, IN, LIKE and ordering are case-insensitive; ids compare
case-sensitively on their first 15 characters; datetimes compare to the second (both the field's
value and the literal drop their milliseconds, as Salesforce does although the stamps it writes
carry them: salesforce.stackexchange.com/q/234824), while ORDER BY keeps the milliseconds;
a date literal on a datetime field means the whole UTC day (or range of days); a comparison
with a null field is false except `= null` (and, as the Salesforce docs say, `= null` on a
boolean field also matches false and `!= null` means true).
The WHERE clause and ORDER BY are compiled once into plain Python closures.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from crmsync.sandbox.clock import parse_datetime, sf_datetime
from crmsync.sandbox.salesforce.schema import Field, SObject, sobject

__all__ = ["Query", "Resolver", "SoqlError", "parse"]

Record = dict[str, Any]
Resolver = Callable[[str, str], dict[str, Any] | None]
"""(sObject name, record Id) -> that record, or None when there is no such record."""

_Predicate = Callable[[Record, Resolver], bool]
_Getter = Callable[[Record, Resolver], Any]
_Test = Callable[[Any], bool]


class SoqlError(Exception):
    """A query Salesforce would refuse."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


# --------------------------------------------------------------------------------------------
# Grammar

_RESERVED = (
    "and|asc|desc|excludes|first|from|group|having|in|includes|last|like|limit|not|null|nulls"
    "|or|select|where|with"
)

_GRAMMAR = r"""
start: _SELECT select_list _FROM NAME where? order? limit?

select_list: _COUNT "(" ")"                                   -> count_select
           | path ("," path)*                                 -> field_select

path: NAME ("." NAME)*

where: _WHERE condition

?condition: simple
          | simple (_AND simple)+                             -> and_
          | simple (_OR simple)+                              -> or_

?simple: NOT simple                                           -> not_
       | "(" condition ")"
       | path COMPARE _literal                                -> compare
       | path LIKE _literal                                   -> like
       | path IN "(" _literal ("," _literal)* ")"             -> in_
       | path NOT IN "(" _literal ("," _literal)* ")"         -> not_in

_literal: STRING | NUMBER | DATETIME | DATE | RELDATE | TRUE | FALSE | NULL

order: ORDER _BY order_item ("," order_item)*
order_item: path DIRECTION? nulls?
nulls: _NULLS NULLS_POS

limit: _LIMIT INT

_SELECT.2: /select\b/i
_FROM.2: /from\b/i
_WHERE.2: /where\b/i
_AND.2: /and\b/i
_OR.2: /or\b/i
NOT.2: /not\b/i
LIKE.2: /like\b/i
IN.2: /in\b/i
ORDER.2: /order\b/i
_BY.2: /by\b/i
_LIMIT.2: /limit\b/i
_NULLS.2: /nulls\b/i
_COUNT.2: /count\b/i
NULLS_POS.2: /(first|last)\b/i
DIRECTION.2: /(asc|desc)\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
NULL.2: /null\b/i
RELDATE.2: /((today|yesterday|tomorrow)\b|(last|next)_n_days:\d+\b)/i
DATETIME.4: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})/
DATE.3: /\d{4}-\d{2}-\d{2}/
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)/
INT: /\d+/
STRING: /'(?:[^'\\]|\\.)*'/s
COMPARE: /!=|<>|<=|>=|=|<|>/
NAME: /(?!(RESERVED)\b)[a-z_][a-z0-9_]*/i

%import common.WS
%ignore WS
""".replace("RESERVED", _RESERVED)

_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=False)


# --------------------------------------------------------------------------------------------
# Public API


@dataclass(repr=False)
class Query:
    """A parsed, schema-checked SOQL query, compiled for evaluation over wire-format records."""

    sobject: SObject
    count_only: bool
    limit: int | None
    _soql: str = field(default="", repr=False)
    _where: _Predicate = field(default=lambda r, res: True, repr=False)
    _order: tuple[_OrderKey, ...] = field(default=(), repr=False)
    _select: _Node | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Query({self._soql!r}, sobject={self.sobject.name!r})"

    def matches(self, record: dict[str, Any], resolve: Resolver) -> bool:
        """Whether `record` satisfies the WHERE clause (True when there is none)."""
        return self._where(record, resolve)

    def sort(self, records: list[dict[str, Any]], resolve: Resolver) -> list[dict[str, Any]]:
        """The records in ORDER BY order (a stable sort; input order when there is no ORDER BY)."""
        out = list(records)
        for key in reversed(self._order):
            out.sort(key=key.function(resolve), reverse=key.descending)
        return out

    def project(
        self, record: dict[str, Any], resolve: Resolver, api_version: str
    ) -> dict[str, Any]:
        """The record as the REST query endpoint returns it: attributes, then the SELECT fields."""
        node = self._select if self._select is not None else _Node()
        base = f"/services/data/v{api_version}/sobjects"
        return _project(node, record, self.sobject.name, resolve, base)

    def run(
        self, records: Iterable[dict[str, Any]], resolve: Resolver, include_deleted: bool
    ) -> list[dict[str, Any]]:
        """Filter (dropping IsDeleted=True rows unless include_deleted), sort, apply LIMIT;
        returns the matching raw records (not projected)."""
        where = self._where
        if include_deleted:
            hits: Iterable[Record] = (r for r in records if where(r, resolve))
        else:
            hits = (r for r in records if not r.get("IsDeleted") and where(r, resolve))
        if not self._order:
            if self.limit is not None:
                return list(islice(hits, self.limit))
            return list(hits)
        out = self.sort(list(hits), resolve)
        return out if self.limit is None else out[: self.limit]


def parse(soql: str, today: Callable[[], date] | None = None) -> Query:
    """Parse and check `soql` against the sandbox schema; raises SoqlError as Salesforce would.

    `today` gives the date that TODAY, LAST_N_DAYS:n etc. are relative to (default: UTC today).
    """
    try:
        tree = _PARSER.parse(soql)
    except UnexpectedInput as exc:
        raise _syntax_error(soql, exc) from None
    day = today() if today is not None else datetime.now(UTC).date()
    return _Compiler(soql, day).query(tree)


# --------------------------------------------------------------------------------------------
# Errors


def _located(soql: str, pos: int, message: str) -> str:
    """Salesforce's error shape: the query line, a caret under `pos`, the row/column, `message`."""
    pos = max(0, min(pos, len(soql)))
    row = soql.count("\n", 0, pos) + 1
    line_start = soql.rfind("\n", 0, pos) + 1
    line_end = soql.find("\n", pos)
    line = soql[line_start : len(soql) if line_end < 0 else line_end]
    column = pos - line_start + 1
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{message}"


_WORD = re.compile(r"[A-Za-z0-9_]+|'(?:[^'\\]|\\.)*'?|\S")


def _syntax_error(soql: str, exc: UnexpectedInput) -> SoqlError:
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        pos = exc.token.start_pos or 0
        what = f"'{exc.token.value}'"
    elif isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        m = _WORD.match(soql, pos)
        what = f"'{m.group(0) if m else soql[pos : pos + 1]}'"
    else:  # end of input
        pos = len(soql.rstrip())
        what = "<EOF>"
    return SoqlError("MALFORMED_QUERY", _located(soql, pos, f"unexpected token: {what}"))


# --------------------------------------------------------------------------------------------
# Compiled pieces


@dataclass(frozen=True)
class _Hop:
    """One parent-relationship step: read `ref_field`, fetch the record it points to."""

    ref_field: str  # e.g. OwnerId
    rel_name: str  # e.g. Owner (the key in projected records)
    target: str | None  # the sObject it points to, or None when polymorphic
    by_prefix: dict[str, str]  # polymorphic: key prefix -> sObject name

    def target_of(self, ref: str) -> str | None:
        return self.target or self.by_prefix.get(ref[:3])


@dataclass(frozen=True)
class _Path:
    """A resolved field reference: relationship hops, then the field on the last object."""

    text: str  # as written in the query
    pos: int
    hops: tuple[_Hop, ...]
    field: Field
    getter: _Getter | None  # None for a plain field of the FROM object

    @property
    def name(self) -> str:
        return self.field.name

    def value_getter(self) -> _Getter:
        if self.getter is not None:
            return self.getter
        name = self.field.name
        return lambda r, res: r.get(name)


@dataclass
class _Rel:
    hop: _Hop
    node: _Node


@dataclass
class _Node:
    """Projection plan for one (possibly nested) record: field names and relationships, in order."""

    items: list[str | _Rel] = field(default_factory=list)
    rels: dict[str, _Rel] = field(default_factory=dict)


@dataclass(frozen=True)
class _OrderKey:
    path: _Path
    value_key: Callable[[Any], Any] | None
    descending: bool
    null_rank: int  # 0 sorts before every value, 2 after (before reversal for DESC)

    def function(self, resolve: Resolver) -> Callable[[Record], tuple[Any, ...]]:
        null = (self.null_rank,)
        vkey = self.value_key
        if self.path.getter is None:
            name = self.path.name
            if vkey is None:

                def plain(r: Record) -> tuple[Any, ...]:
                    v = r.get(name)
                    return null if v is None else (1, v)

                return plain

            def plain_keyed(r: Record) -> tuple[Any, ...]:
                v = r.get(name)
                return null if v is None else (1, vkey(v))

            return plain_keyed
        get = self.path.getter

        def related(r: Record) -> tuple[Any, ...]:
            v = get(r, resolve)
            if v is None:
                return null
            return (1, v if vkey is None else vkey(v))

        return related


def _project(node: _Node, rec: Record, type_name: str, resolve: Resolver, base: str) -> Record:
    out: Record = {"attributes": {"type": type_name, "url": f"{base}/{type_name}/{rec.get('Id')}"}}
    for item in node.items:
        if isinstance(item, str):
            out[item] = rec.get(item)
            continue
        hop = item.hop
        ref = rec.get(hop.ref_field)
        target = hop.target_of(ref) if isinstance(ref, str) else None
        parent = resolve(target, ref) if target is not None and isinstance(ref, str) else None
        out[hop.rel_name] = (
            None
            if parent is None or target is None
            else _project(item.node, parent, target, resolve, base)
        )
    return out


def _make_getter(hops: tuple[_Hop, ...], name: str) -> _Getter | None:
    if not hops:
        return None
    if len(hops) == 1 and hops[0].target is not None:
        ref_field, target = hops[0].ref_field, hops[0].target

        def one_hop(r: Record, resolve: Resolver) -> Any:
            ref = r.get(ref_field)
            if ref is None:
                return None
            parent = resolve(target, ref)
            return None if parent is None else parent.get(name)

        return one_hop

    def many_hops(r: Record, resolve: Resolver) -> Any:
        cur = r
        for hop in hops:
            ref = cur.get(hop.ref_field)
            if ref is None:
                return None
            target = hop.target_of(ref)
            parent = None if target is None else resolve(target, ref)
            if parent is None:
                return None
            cur = parent
        return cur.get(name)

    return many_hops


# --------------------------------------------------------------------------------------------
# Types and literals

# How a field type is compared; every type not listed compares as a string.
_CATEGORY = {
    "id": "id",
    "reference": "id",
    "boolean": "bool",
    "currency": "num",
    "percent": "num",
    "double": "num",
    "int": "num",
    "date": "date",
    "datetime": "datetime",
}
_TYPE_WORD = {
    "id": "id",
    "bool": "boolean",
    "date": "date",
    "datetime": "dateTime",
    "str": "string",
}
_ID_LITERAL = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_ESCAPES = {
    "n": "\n",
    "N": "\n",
    "r": "\r",
    "R": "\r",
    "t": "\t",
    "T": "\t",
    "b": "\b",
    "B": "\b",
    "f": "\f",
    "F": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}
# op -> f such that f(literal, value) == (value op literal), for use with functools.partial
_FLIPPED: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.gt,
    "<=": operator.ge,
    ">": operator.lt,
    ">=": operator.le,
}


def _category(f: Field) -> str:
    return _CATEGORY.get(f.type, "str")


def _id15(value: str) -> str:
    return value[:15]


def _str_key(value: str) -> str:
    return value.lower()


def _second(value: str) -> str:
    """A datetime wire value (`2026-11-20T08:15:00.123+0000`) cut to the second.

    SOQL compares datetimes to the second, while the stamps written through the API carry
    milliseconds (salesforce.stackexchange.com/q/234824): `SystemModstamp > 08:15:00.000Z`
    does not match a record stamped 08:15:00.123, and `>=` matches it.
    """
    return value[:19]


def _value_key(category: str) -> Callable[[Any], Any] | None:
    """What a record value is mapped through before comparing with (keyed) literals."""
    if category == "str":
        return _str_key
    if category == "id":
        return _id15
    if category == "datetime":
        return _second
    return None


def _midnight(d: date) -> str:
    return _second(d.isoformat() + "T00:00:00.000+0000")


class _Compiler:
    """Turns a lark parse tree into a Query, checking names and types on the way."""

    def __init__(self, soql: str, today: date) -> None:
        self.soql = soql
        self.today = today
        self.obj: SObject | None = None

    def error(self, code: str, pos: int, message: str) -> SoqlError:
        return SoqlError(code, _located(self.soql, pos, message))

    # -- structure ---------------------------------------------------------------------------

    def query(self, tree: Tree[Token]) -> Query:
        select, obj_tok, *clauses = tree.children
        assert isinstance(select, Tree) and isinstance(obj_tok, Token)
        obj = sobject(str(obj_tok))
        if obj is None:
            raise self.error(
                "INVALID_TYPE",
                _pos(obj_tok),
                f"sObject type '{obj_tok}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        self.obj = obj
        query = Query(obj, count_only=select.data == "count_select", limit=None, _soql=self.soql)
        if not query.count_only:
            query._select = self.select_list(select)
        for clause in clauses:
            assert isinstance(clause, Tree)
            if clause.data == "where":
                cond = clause.children[0]
                query._where = self.condition(cond)
            elif clause.data == "order":
                order_tok = clause.children[0]
                assert isinstance(order_tok, Token)
                if query.count_only:
                    raise self.error(
                        "MALFORMED_QUERY",
                        _pos(order_tok),
                        "COUNT() and ORDER BY may not be used together",
                    )
                query._order = tuple(self.order_item(_tree(c)) for c in clause.children[1:])
            else:  # limit
                query.limit = int(_token(clause.children[0]))
        return query

    def select_list(self, select: Tree[Token]) -> _Node:
        root = _Node()
        seen: set[tuple[str, ...]] = set()
        for child in select.children:
            path = self.path(_tree(child))
            key = (*(h.rel_name.lower() for h in path.hops), path.name.lower())
            if key in seen:
                raise self.error(
                    "MALFORMED_QUERY", path.pos, f"duplicate field selected: {path.text}"
                )
            seen.add(key)
            node = root
            for hop in path.hops:
                rel = node.rels.get(hop.rel_name.lower())
                if rel is None:
                    rel = _Rel(hop, _Node())
                    node.rels[hop.rel_name.lower()] = rel
                    node.items.append(rel)
                node = rel.node
            node.items.append(path.name)
        return root

    def path(self, tree: Tree[Token]) -> _Path:
        names = [_token(c) for c in tree.children]
        pos = _pos(names[0])
        text = ".".join(str(n) for n in names)
        assert self.obj is not None
        obj: SObject = self.obj
        hops: list[_Hop] = []
        polymorphic: list[SObject] = []
        for i, rel_tok in enumerate(names[:-1]):
            rel = obj.relationships.get(rel_tok.lower())
            targets = [] if rel is None else [o for o in map(sobject, rel.reference_to) if o]
            if rel is None or not targets or (len(rel.reference_to) > 1 and i < len(names) - 2):
                raise self.error(
                    "INVALID_FIELD",
                    pos,
                    f"Didn't understand relationship '{rel_tok}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name. Please reference your WSDL or the describe "
                    "call for the appropriate names.",
                )
            assert rel.relationship_name is not None
            if len(rel.reference_to) == 1:
                hops.append(_Hop(rel.name, rel.relationship_name, targets[0].name, {}))
                obj = targets[0]
            else:
                prefixes = {o.key_prefix: o.name for o in targets}
                hops.append(_Hop(rel.name, rel.relationship_name, None, prefixes))
                polymorphic = targets
        last = str(names[-1])
        if polymorphic:
            found = [o.field(last) for o in polymorphic]
            first = found[0]
            same = first is not None and all(
                f is not None and (f.name, f.type) == (first.name, first.type) for f in found
            )
            fld = first if same else None
            entity = "Name"
        else:
            fld = obj.field(last)
            entity = obj.name
        if fld is None:
            raise self.error(
                "INVALID_FIELD",
                pos,
                f"No such column '{last}' on entity '{entity}'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        return _Path(text, pos, tuple(hops), fld, _make_getter(tuple(hops), fld.name))

    def order_item(self, tree: Tree[Token]) -> _OrderKey:
        path = self.path(_tree(tree.children[0]))
        if path.field.type == "textarea":
            raise self.error(
                "INVALID_FIELD", path.pos, f"field '{path.text}' can not be sorted in a query call"
            )
        descending = False
        nulls_first: bool | None = None
        for child in tree.children[1:]:
            if isinstance(child, Token):
                descending = child.lower() == "desc"
            else:
                nulls_first = _token(child.children[0]).lower() == "first"
        if nulls_first is None:
            nulls_first = not descending
        # For a descending (reversed) sort the ranks swap sides.
        null_rank = 0 if nulls_first != descending else 2
        cat = _category(path.field)
        vkey = _str_key if cat == "str" else None
        return _OrderKey(path, vkey, descending, null_rank)

    # -- WHERE -------------------------------------------------------------------------------

    def condition(self, node: Tree[Token] | Token) -> _Predicate:
        tree = _tree(node)
        kind = tree.data
        if kind == "and_":
            return _all_of([self.condition(c) for c in tree.children])
        if kind == "or_":
            return _any_of([self.condition(c) for c in tree.children])
        if kind == "not_":
            inner = self.condition(tree.children[1])
            return lambda r, res: not inner(r, res)
        path = self.path(_tree(tree.children[0]))
        if kind == "compare":
            op_tok, lit = _token(tree.children[1]), _token(tree.children[2])
            op = "!=" if op_tok == "<>" else str(op_tok)
            return self.compare(path, op, _pos(op_tok), lit)
        if kind == "like":
            return self.like(path, _token(tree.children[1]), _token(tree.children[2]))
        # in_: path IN literal...; not_in: path NOT IN literal...
        literals = [_token(c) for c in tree.children[3 if kind == "not_in" else 2 :]]
        return self.member(path, literals, negate=kind == "not_in")

    def operator_error(self, path: _Path, op: str, pos: int, null: bool = False) -> SoqlError:
        what = "a null value" if null else f"field '{path.text}' of type {path.field.type}"
        return self.error(
            "INVALID_QUERY_FILTER_OPERATOR", pos, f"invalid operator '{op}' for {what}"
        )

    def compare(self, path: _Path, op: str, op_pos: int, lit: Token) -> _Predicate:
        cat = _category(path.field)
        if lit.type == "NULL":
            if op not in ("=", "!="):
                raise self.operator_error(path, op, op_pos, null=True)
            return _null_check(path, equal=op == "=", boolean=cat == "bool")
        if cat == "bool" and op not in ("=", "!="):
            raise self.operator_error(path, op, op_pos)
        if cat in ("date", "datetime") and lit.type in ("DATE", "RELDATE"):
            lo, hi = self.day_range(lit, cat)
            return _leaf(path, _range_test(op, lo, hi))
        value = self.scalar(path, cat, lit)
        vkey = _value_key(cat)
        flipped = _FLIPPED[op]
        if vkey is None:
            return _leaf(path, partial(flipped, value))

        def keyed(v: Any) -> bool:
            return flipped(value, vkey(v))

        return _leaf(path, keyed)

    def like(self, path: _Path, like_tok: Token, lit: Token) -> _Predicate:
        cat = _category(path.field)
        if lit.type == "NULL":
            raise self.operator_error(path, "LIKE", _pos(like_tok), null=True)
        if cat != "str":
            raise self.operator_error(path, "LIKE", _pos(like_tok))
        if lit.type != "STRING":
            raise self.type_error(path, cat, lit)
        chars = self.string(lit)
        body = chars[:-1]
        if chars and chars[-1] == ("%", False) and all(esc or ch not in "%_" for ch, esc in body):
            prefix = "".join(ch for ch, _ in body).lower()  # the common 'abc%' case
            return _leaf(path, lambda v: v.lower().startswith(prefix))
        pattern = "".join(
            ".*" if ch == "%" and not esc else "." if ch == "_" and not esc else re.escape(ch)
            for ch, esc in chars
        )
        rx = re.compile(pattern, re.IGNORECASE | re.DOTALL)
        return _leaf(path, lambda v: rx.fullmatch(v) is not None)

    def member(self, path: _Path, literals: list[Token], negate: bool) -> _Predicate:
        cat = _category(path.field)
        has_null = any(lit.type == "NULL" for lit in literals)
        values: set[Any] = set()
        ranges: list[tuple[str, str]] = []
        for lit in literals:
            if lit.type == "NULL":
                continue
            if cat in ("date", "datetime") and lit.type in ("DATE", "RELDATE"):
                ranges.append(self.day_range(lit, cat))
            else:
                values.add(self.scalar(path, cat, lit))
        if cat == "bool" and has_null:
            values.add(False)  # null matches false on boolean fields
        vkey = _value_key(cat)

        def contained(v: Any) -> bool:
            k = v if vkey is None else vkey(v)
            return k in values or any(lo <= k < hi for lo, hi in ranges)

        test: _Test = contained
        if negate:
            test = lambda v: not contained(v)  # noqa: E731
        leaf = _leaf(path, test)
        if negate or not has_null:
            return leaf
        get = path.value_getter()
        return lambda r, res: get(r, res) is None or leaf(r, res)

    # -- literal values ----------------------------------------------------------------------

    def type_error(self, path: _Path, cat: str, lit: Token) -> SoqlError:
        word = (
            "double"
            if cat == "num" and path.field.type != "int"
            else ("int" if cat == "num" else _TYPE_WORD[cat])
        )
        if cat in ("str", "id"):
            quotes = " and should be enclosed in quotes"
        elif lit.type == "STRING":
            quotes = " and should not be enclosed in quotes"
        else:
            quotes = ""
        return self.error(
            "MALFORMED_QUERY",
            _pos(lit),
            f"value of filter criterion for field '{path.text}' must be of type {word}{quotes}",
        )

    def scalar(self, path: _Path, cat: str, lit: Token) -> Any:
        """The literal as a comparable value in the field's (keyed) value space; type-checked."""
        kind = lit.type
        if cat == "str" and kind == "STRING":
            return self.text(lit).lower()
        if cat == "id" and kind == "STRING":
            value = self.text(lit)
            if not _ID_LITERAL.fullmatch(value):
                raise self.error(
                    "INVALID_QUERY_FILTER_OPERATOR", _pos(lit), f"invalid ID field: {value}"
                )
            return value[:15]
        if cat == "bool" and kind in ("TRUE", "FALSE"):
            return kind == "TRUE"
        if cat == "num" and kind == "NUMBER":
            text = str(lit)
            return float(text) if "." in text else int(text)
        if cat == "datetime" and kind == "DATETIME":
            try:
                return _second(sf_datetime(parse_datetime(str(lit))))
            except ValueError:
                raise self.unexpected(lit) from None
        raise self.type_error(path, cat, lit)

    def unexpected(self, tok: Token) -> SoqlError:
        return self.error("MALFORMED_QUERY", _pos(tok), f"unexpected token: '{tok}'")

    def day_range(self, lit: Token, cat: str) -> tuple[str, str]:
        """[lo, hi) in the field's wire format for a date literal: whole UTC days."""
        text = str(lit).lower()
        t = self.today
        try:
            if lit.type == "DATE":
                first = last = date.fromisoformat(text)
            elif text == "today":
                first = last = t
            elif text == "yesterday":
                first = last = t - timedelta(days=1)
            elif text == "tomorrow":
                first = last = t + timedelta(days=1)
            else:
                n = int(text.split(":")[1])
                if text.startswith("last"):
                    first, last = t - timedelta(days=n), t
                else:
                    first, last = t + timedelta(days=1), t + timedelta(days=n)
            end = last + timedelta(days=1)
        except (ValueError, OverflowError):
            raise self.unexpected(lit) from None
        if cat == "date":
            return first.isoformat(), end.isoformat()
        return _midnight(first), _midnight(end)

    def string(self, lit: Token) -> list[tuple[str, bool]]:
        """A quoted literal's characters, each with whether it was backslash-escaped."""
        raw = str(lit)[1:-1]
        out: list[tuple[str, bool]] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch != "\\":
                out.append((ch, False))
                i += 1
                continue
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt in _ESCAPES:
                out.append((_ESCAPES[nxt], True))
            elif nxt in ("%", "_"):
                out.append((nxt, True))
            else:
                raise self.error(
                    "MALFORMED_QUERY",
                    _pos(lit),
                    f"Invalid string literal '{raw}'. Illegal character sequence '\\{nxt}' in "
                    "string literal.",
                )
            i += 2
        return out

    def text(self, lit: Token) -> str:
        return "".join(ch for ch, _ in self.string(lit))


# --------------------------------------------------------------------------------------------
# Predicate builders


def _leaf(path: _Path, test: _Test) -> _Predicate:
    """A predicate that is false on a null value and otherwise applies `test`."""
    if path.getter is None:
        name = path.name

        def plain(r: Record, resolve: Resolver) -> bool:
            v = r.get(name)
            return v is not None and test(v)

        return plain
    get = path.getter

    def related(r: Record, resolve: Resolver) -> bool:
        v = get(r, resolve)
        return v is not None and test(v)

    return related


def _null_check(path: _Path, equal: bool, boolean: bool) -> _Predicate:
    get = path.value_getter()
    if boolean:  # Salesforce: on a boolean field null matches false
        if equal:
            return lambda r, res: not get(r, res)
        return lambda r, res: get(r, res) is True
    if path.getter is None:
        name = path.name
        if equal:
            return lambda r, res: r.get(name) is None
        return lambda r, res: r.get(name) is not None
    if equal:
        return lambda r, res: get(r, res) is None
    return lambda r, res: get(r, res) is not None


def _range_test(op: str, lo: str, hi: str) -> _Test:
    if op == "=":
        return lambda v: lo <= v < hi
    if op == "!=":
        return lambda v: not lo <= v < hi
    bound, flipped = {
        "<": (lo, operator.gt),
        "<=": (hi, operator.gt),
        ">": (hi, operator.le),
        ">=": (lo, operator.le),
    }[op]
    return partial(flipped, bound)


def _all_of(preds: list[_Predicate]) -> _Predicate:
    if len(preds) == 2:
        a, b = preds
        return lambda r, res: a(r, res) and b(r, res)

    def every(r: Record, resolve: Resolver) -> bool:
        return all(p(r, resolve) for p in preds)

    return every


def _any_of(preds: list[_Predicate]) -> _Predicate:
    if len(preds) == 2:
        a, b = preds
        return lambda r, res: a(r, res) or b(r, res)

    def some(r: Record, resolve: Resolver) -> bool:
        return any(p(r, resolve) for p in preds)

    return some


# --------------------------------------------------------------------------------------------
# Tree helpers


def _tree(node: Tree[Token] | Token) -> Tree[Token]:
    assert isinstance(node, Tree)
    return node


def _token(node: Tree[Token] | Token) -> Token:
    assert isinstance(node, Token)
    return node


def _pos(tok: Token) -> int:
    return tok.start_pos or 0
