"""Limits on a condition's size and cost, checked on its text before the `cel` package sees it.

The `cel` package parses and evaluates by recursion in Rust: a chain of some 15,000 `+` terms
or 20,000 `.a` links overflows the stack and kills the process (no Python exception to catch),
and it has no time budget: `L.all(x, L.all(y, L.exists(z, ...)))` over a 2,000-item list runs
for hours holding the interpreter, deaf to signals. So a condition is refused at load when it is
too long, too deeply nested, has too many operators, a literal list too long, comprehensions
nested too deep, or when a static estimate of the work of its comprehensions per record is over
a budget. The check is one linear scan over tokens with a stack of open brackets (no recursion,
no parse tree), so it is cheap whatever it is given.

The cost estimate counts steps: a literal list costs its items each time it is built, `all`,
`exists` and `exists_one` cost their range's size times their body, `map` and `filter` the
square of the range (the `cel` package copies its result at every step) times their body; a
body costs its literals plus the square of how often it names its item times the item's size
(`x + x + x` copies what it built so far at every `+`); a comprehension nested in another is
paid for at every step of the outer one. A range is the literal list it iterates when there is
one, what a `map` or `filter` before it gives, else (a field, a computed list) `FIELD_RANGE`
items or the literal items it is built from, whichever is more. A field's value counts as one
step, except where `+` joins fields: `name + name + ...` copies all the text joined so far at
every `+`, so joined fields cost the square of their count times `TEXT_STEPS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LENGTH = 4_000
"""The longest condition, in characters."""

MAX_NESTING = 32
"""The deepest nesting of parentheses, brackets and braces."""

MAX_OPERATORS = 500
"""The most operators, `.` member accesses and `[...]` indexes in one condition."""

MAX_LITERAL_ITEMS = 1_000
"""The most items in one literal list or map."""

MAX_COMPREHENSION_NESTING = 2
"""How deep `all`, `exists`, `exists_one`, `map` and `filter` may be nested in one another."""

MAX_COST = 1_000_000
"""The most estimated steps one evaluation of a condition may take (about 0.1 s)."""

FIELD_RANGE = 100
"""The items a comprehension over a field or computed list is assumed to iterate."""

TEXT_STEPS = 400
"""What copying one field's text costs, in steps: a field holds at most 131,072 characters
(what the store keeps), and `name + name + ...` copies all it has joined so far at every `+`."""

MACROS = frozenset(("all", "exists", "exists_one", "map", "filter"))

_TOKEN = re.compile(
    r"""(?P<str>[rRbB]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'
                           |"(?:\\.|[^"\\\n])*"))
      | (?P<comment>//[^\n]*)
      | (?P<num>[0-9][\w.]*)
      | (?P<ident>[A-Za-z_]\w*)
      | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:])
      | (?P<open>[(\[{])
      | (?P<close>[)\]}])
      | (?P<comma>,)
      | (?P<dot>\.)
      | (?P<space>\s+)
      | (?P<other>.)""",
    re.VERBOSE,
)
_OPERAND = frozenset(("str", "num", "ident", "close"))


class LimitExceeded(ValueError):
    """A condition past a limit: `message` in one line, `column` 1-based within the source."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


@dataclass
class _Frame:
    """An open bracket: what it is and what was counted inside it so far."""

    bracket: str
    column: int
    literal: bool = False  # a list or map literal (not an index or a call)
    macro: str | None = None  # the comprehension this bracket is the call of
    macro_column: int = 0
    range: int = 0  # items the comprehension iterates
    element: int = 0  # estimated size of one of those items
    variable: str | None = None  # the name the comprehension binds
    uses: int = 0  # how often its body names that variable
    commas: int = 0
    content: bool = False
    items: int = 0  # literal items built inside, per evaluation of this bracket
    cost: int = 0  # steps of the comprehensions inside, per evaluation of this bracket
    joined: int = 0  # fields joined by `+` directly in this bracket


def check_limits(source: str) -> None:
    """Raise `LimitExceeded` when `source` is past one of this module's limits."""
    if len(source) > MAX_LENGTH:
        raise LimitExceeded(
            f"the condition is {len(source):,} characters long; the limit is {MAX_LENGTH:,}", 1
        )
    stack: list[_Frame] = []
    recent: list[tuple[str, str, _Frame | None]] = []  # the last three tokens: kind, text, frame
    operators = 0
    top = _Frame("", 0)  # the whole expression
    for found in _TOKEN.finditer(source):
        kind = found.lastgroup or "other"
        if kind in ("space", "comment"):
            continue
        text, column = found.group(), found.start() + 1
        holder = stack[-1] if stack else top
        if kind != "close":
            holder.content = True
        if kind == "ident" and text == "in":
            kind = "op"
        if kind == "ident":
            _use(text, holder, stack)
        closed: _Frame | None = None
        if kind in ("op", "dot") or (kind == "open" and text == "[" and _after_operand(recent)):
            operators += 1
            if operators > MAX_OPERATORS:
                raise LimitExceeded(
                    f"more than {MAX_OPERATORS} operators, '.' and '[...]' in one condition; "
                    "split it into several rules",
                    column,
                )
        if kind == "comma":
            holder.commas += 1
            if holder.literal and holder.commas >= MAX_LITERAL_ITEMS:
                raise _too_many_items(holder)
        elif kind == "open":
            stack.append(_open(text, column, recent, stack))
        elif kind == "close" and stack:
            closed = stack.pop()
            _close(closed, stack[-1] if stack else top)
        _joined(kind, text, recent, holder, stack)
        recent = [*recent[-2:], (kind, text, closed)]
    top.cost += top.joined * top.joined * TEXT_STEPS
    if top.cost + top.items > MAX_COST:
        raise _too_costly(top.cost + top.items, 1)


def _use(name: str, holder: _Frame, stack: list[_Frame]) -> None:
    """Note a comprehension's variable: named first in its call, then used in its body."""
    if holder.macro is not None and holder.variable is None:
        holder.variable = name
        return
    for outer in reversed(stack):
        if outer.macro is not None and outer.variable == name:
            outer.uses += 1
            return


def _after_operand(recent: list[tuple[str, str, _Frame | None]]) -> bool:
    return bool(recent) and recent[-1][0] in _OPERAND


def _open(
    text: str, column: int, recent: list[tuple[str, str, _Frame | None]], stack: list[_Frame]
) -> _Frame:
    frame = _Frame(text, column, literal=text in "[{" and not _after_operand(recent))
    if len(stack) >= MAX_NESTING:
        raise LimitExceeded(
            f"nested more than {MAX_NESTING} levels deep (parentheses, brackets and braces)",
            column,
        )
    if text == "(" and len(recent) >= 2 and recent[-2][0] == "dot" and recent[-1][1] in MACROS:
        frame.macro = recent[-1][1]
        frame.macro_column = column - len(frame.macro)
        depth = sum(1 for f in stack if f.macro is not None) + 1
        if depth > MAX_COMPREHENSION_NESTING:
            raise LimitExceeded(
                f"comprehensions (all, exists, exists_one, map, filter) nested {depth} deep; "
                f"the limit is {MAX_COMPREHENSION_NESTING}",
                frame.macro_column,
            )
        receiver = recent[0] if len(recent) == 3 else None
        frame.range, frame.element = _range(receiver, stack)
    return frame


def _range(receiver: tuple[str, str, _Frame | None] | None, stack: list[_Frame]) -> tuple[int, int]:
    """How many items a comprehension over `receiver` iterates, and how big one item may be
    (a plain value is 1; a list counts its items)."""
    if receiver is None:
        return FIELD_RANGE, 1
    kind, text, frame = receiver
    if frame is not None:
        if frame.literal:
            count = frame.commas + (1 if frame.content else 0)
            return count, max(1, frame.items - count)
        if frame.macro == "filter":
            return frame.range, frame.element
        if frame.macro == "map":
            return frame.range, _body_size(frame)
        return max(FIELD_RANGE, frame.items), max(1, frame.items)
    if kind == "ident":
        for outer in reversed(stack):
            if outer.macro is not None and outer.variable == text:
                return max(FIELD_RANGE, outer.element), 1
    return FIELD_RANGE, 1


def _joined(
    kind: str,
    text: str,
    recent: list[tuple[str, str, _Frame | None]],
    holder: _Frame,
    stack: list[_Frame],
) -> None:
    """Count the field (not a comprehension's variable) the last token was, if `+` joins it."""
    if not recent or recent[-1][0] != "ident" or text in ("(", "."):
        return
    before = recent[-2][1] if len(recent) >= 2 else ""
    if text != "+" and before != "+":
        return
    name = recent[-1][1]
    if before != "." and any(f.macro is not None and f.variable == name for f in stack):
        return
    holder.joined += 1


def _close(frame: _Frame, parent: _Frame) -> None:
    """Count a closed bracket's items and cost into the bracket holding it."""
    frame.cost += frame.joined * frame.joined * TEXT_STEPS
    if frame.literal:
        count = frame.commas + (1 if frame.content else 0)
        if count > MAX_LITERAL_ITEMS:
            raise _too_many_items(frame)
        frame.items += count
    if frame.macro is None:
        parent.items += frame.items
        parent.cost += frame.cost
        return
    body = _body_size(frame) + frame.cost
    r = frame.range
    cost = (
        r * r * body
        if frame.macro == "map"
        else r * (r + body)
        if frame.macro == "filter"
        else r * body
    )
    if cost > MAX_COST:
        raise _too_costly(cost, frame.macro_column)
    parent.cost += cost
    if parent.cost + parent.items > MAX_COST:
        raise _too_costly(parent.cost + parent.items, frame.macro_column)


def _body_size(frame: _Frame) -> int:
    """The size of what a comprehension's body builds: its literals and the items it names
    (squared: `x + x + x` copies what it has built so far at every `+`)."""
    return 1 + frame.items + frame.uses * frame.uses * frame.element


def _too_many_items(frame: _Frame) -> LimitExceeded:
    what = "list" if frame.bracket == "[" else "map"
    return LimitExceeded(
        f"a literal {what} may hold at most {MAX_LITERAL_ITEMS:,} items", frame.column
    )


def _too_costly(cost: int, column: int) -> LimitExceeded:
    return LimitExceeded(
        f"the condition may take about {cost:,} steps per record; the limit is "
        f"{MAX_COST:,} (iterate over fewer items, nest less or join fewer texts with +)",
        column,
    )
