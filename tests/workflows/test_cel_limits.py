"""The condition limits at their edges: what is just inside compiles (and runs fast), what is
just past is one line with a column. Far-past inputs, which would crash or hang the `cel`
package, are in tests/data/hostile/files/ and only ever run in a child process."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.workflows.cel_limits import (
    MAX_COMPREHENSION_NESTING,
    MAX_LENGTH,
    MAX_LITERAL_ITEMS,
    MAX_NESTING,
    MAX_OPERATORS,
    LimitExceeded,
    check_limits,
)
from crmsync.workflows.expressions import ExpressionError, compile_condition
from crmsync.workflows.load import variables

NAMES = variables()


def items(n: int) -> str:
    """A literal list of `n` one-digit items, as short as it can be written."""
    return "[" + ",".join(str(i % 10) for i in range(n)) + "]"


def refusal(source: str) -> tuple[str, int | None]:
    with pytest.raises(ExpressionError) as info:
        compile_condition(source, NAMES)
    return info.value.message, info.value.column


def test_length_up_to_the_limit_compiles() -> None:
    """A 4,000-character condition compiles; one character more is refused at column 1."""
    padded = "is_closed" + " " * (MAX_LENGTH - len("is_closed"))
    assert compile_condition(padded, NAMES)({"is_closed": True}) is True
    assert refusal(padded + " ") == (
        f"the condition is {MAX_LENGTH + 1:,} characters long; the limit is {MAX_LENGTH:,}",
        1,
    )


def test_nesting_up_to_the_limit_compiles() -> None:
    """32 levels of parentheses compile; the 33rd is refused where it opens."""
    inside = "(" * MAX_NESTING + "is_closed" + ")" * MAX_NESTING
    assert compile_condition(inside, NAMES)({"is_closed": False}) is False
    past = "(" + inside + ")"
    assert refusal(past) == (
        f"nested more than {MAX_NESTING} levels deep (parentheses, brackets and braces)",
        MAX_NESTING + 1,
    )


def test_operators_up_to_the_limit_compile() -> None:
    """500 operators compile; the 501st is refused where it is."""
    inside = " + ".join(["1"] * MAX_OPERATORS) + " > 0"  # 499 '+' and one '>'
    assert compile_condition(inside, NAMES)({}) is True
    past = "1 + " + inside
    message, column = refusal(past)
    assert message.startswith(f"more than {MAX_OPERATORS} operators")
    assert column == past.rindex(">") + 1


def test_literal_list_up_to_the_limit_compiles() -> None:
    """A 1,000-item literal list compiles; 1,001 items are refused at its bracket."""
    inside = f"close_date_push_count in {items(MAX_LITERAL_ITEMS)}"
    assert compile_condition(inside, NAMES)({"close_date_push_count": 9}) is True
    past = f"close_date_push_count in {items(MAX_LITERAL_ITEMS + 1)}"
    assert refusal(past) == (
        f"a literal list may hold at most {MAX_LITERAL_ITEMS:,} items",
        len("close_date_push_count in ") + 1,
    )


def test_two_nested_comprehensions_compile_three_do_not() -> None:
    """Comprehensions nest 2 deep; a third is refused at its name."""
    inside = 'skipped_stages.exists(s, skipped_stages.all(t, t != s || s == "x"))'
    condition = compile_condition(inside, NAMES)
    assert condition({"skipped_stages": ["a", "b"]}) is False
    past = "[1].all(x, [1].all(y, [1].exists(z, x + y + z >= 0)))"
    assert refusal(past) == (
        "comprehensions (all, exists, exists_one, map, filter) nested 3 deep; "
        f"the limit is {MAX_COMPREHENSION_NESTING}",
        past.index("exists") + 1,
    )


def test_what_fits_the_cost_budget_runs_fast() -> None:
    """The costliest comprehensions the budget lets through answer within a second."""
    accepted = [
        f"{items(1000)}.all(x, {items(100)}.exists(y, x + y < 0)) || true",
        f"{items(500)}.map(x, x * 2).size() > 0",
        f"{items(500)}.filter(x, x > 1).size() > 0",
    ]
    for source in accepted:
        condition = compile_condition(source, NAMES)
        started = time.monotonic()
        assert condition({}) is True
        assert time.monotonic() - started < 1.0, source


def test_over_the_cost_budget_is_refused_at_the_comprehension() -> None:
    """A comprehension estimated past the budget is refused at its name, with its estimate."""
    source = f"{items(1000)}.map(x, {items(10)}).size() > 0"
    message, column = refusal(source)
    assert message == (
        "the condition may take about 11,000,000 steps per record; the limit is "
        "1,000,000 (iterate over fewer items, nest less or join fewer texts with +)"
    )
    assert column == source.index("map") + 1


def test_right_nested_conditionals_past_cels_parser_are_one_plain_line() -> None:
    """`a ? b : c ? ...` 150 deep passes the text limits but not cel's parser: one line."""
    message, _ = refusal("true ? true : " * 150 + "false")
    assert message == "nested more than 96 levels deep (parentheses, calls, lists and '? :')"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="()[]{}.,+!?:&|=<> xa01'\"\\/\n", max_size=MAX_LENGTH + 50))
def test_any_text_is_either_within_limits_or_refused(source: str) -> None:
    """Whatever the text, the check returns or raises LimitExceeded (no other error, no
    recursion), in linear time."""
    try:
        check_limits(source)
    except LimitExceeded as e:
        assert "\n" not in e.message and e.column >= 1


def test_fields_joined_by_plus_are_paid_for_by_their_text() -> None:
    """50 fields joined by `+` compile and run fast on the longest text the store keeps;
    51 are refused (each `+` copies the text joined so far)."""
    inside = " + ".join(["name"] * 50) + ' != ""'
    condition = compile_condition(inside, NAMES)
    started = time.monotonic()
    assert condition({"name": "x" * 131_072}) is True
    assert time.monotonic() - started < 1.0
    message, _ = refusal(" + ".join(["name"] * 51) + ' != ""')
    assert message.startswith("the condition may take about 1,040,400 steps per record")
