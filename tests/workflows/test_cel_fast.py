"""The CEL fast path against the `cel` package: same answer, or it defers (never a different
answer). Expressions and records are generated; the shipped conditions must take the fast path."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsync.workflows.cel_fast import Unsure, compile_fast
from crmsync.workflows.load import load_workflow

ROOT = Path(__file__).resolve().parents[2]
NAMES = frozenset({"i", "j", "x", "y", "s", "t", "b", "n"})

ints = st.one_of(
    st.integers(-5, 5), st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 2**62, -(2**63)])
)
floats = st.one_of(
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 2.0, -1.5, 1e300, math.nan, math.inf, 2.0**53 + 2]),
    st.floats(-10, 10),
)
strings = st.sampled_from(["", "a", "b", "ab", "negotiation", "Ä", "a\n"])
values = st.one_of(st.none(), st.booleans(), ints, floats, strings)

int_literals = st.sampled_from(["0", "1", "-1", "3", "9007199254740993", "0x10", "1u"])
float_literals = st.sampled_from(["0.0", "1.0", "-1.5", "1e3", "2.5", "-0.0"])
string_literals = st.sampled_from(['"a"', "'b'", '""', '"negotiation"', '"a\\n"', 'r"a"'])
literals = st.one_of(
    int_literals, float_literals, string_literals, st.sampled_from(["null", "true", "false"])
)
operands = st.one_of(st.sampled_from(sorted(NAMES)), literals)
relations = st.builds(
    lambda a, op, b: f"{a} {op} {b}",
    operands,
    st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
    operands,
)
lists = st.lists(literals, max_size=3).map(lambda items: "[" + ", ".join(items) + "]")
memberships = st.builds(lambda a, items: f"{a} in {items}", operands, lists)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"{a} && {b}", children, children),
        st.builds(lambda a, b: f"{a} || {b}", children, children),
        st.builds(lambda a: f"!{a}", children),
        st.builds(lambda a: f"!!({a})", children),
        st.builds(lambda a: f"({a})", children),
        st.builds(lambda a, b, c: f"{a} ? {b} : {c}", children, children, children),
    )


expressions = st.recursive(
    st.one_of(relations, memberships, st.sampled_from(sorted(NAMES)), literals),
    _combine,
    max_leaves=6,
)
records = st.fixed_dictionaries({name: values for name in sorted(NAMES)})


def _reference(source: str, record: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", cel.compile(source).execute(dict(record))
    except Exception as e:
        return "error", type(e).__name__


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@settings(max_examples=6000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, st.lists(records, min_size=1, max_size=4))
def test_fast_answers_agree_with_cel_or_defer(source: str, batch: list[dict[str, Any]]) -> None:
    """Whatever the expression and the values, the fast path gives CEL's own answer or defers."""
    try:
        cel.compile(source)
    except Exception:
        return  # not CEL: validation rejects it before any fast path is built
    fast = compile_fast(source, NAMES)
    if fast is None:
        return
    for record in batch:
        try:
            answer = fast(record)
        except Unsure:
            continue
        outcome, expected = _reference(source, record)
        assert outcome == "value", (source, record, answer, expected)
        assert _same(answer, expected), (source, record, answer, expected)


@pytest.mark.parametrize(
    ("source", "record", "answer"),
    [
        ("x == null || x >= 1000.0", {"x": None}, True),
        ("x == null || x >= 1000.0", {"x": 999.5}, False),
        ("x >= 10000 && !b", {"x": 25000.0, "b": False}, True),
        ('s in ["a", "b"]', {"s": "b"}, True),
        ("i != null && i > 2", {"i": 3}, True),
        ("!!(x > 1.0)", {"x": 0.5}, False),
        ("b ? s == 'a' : false", {"b": True, "s": "a"}, True),
    ],
)
def test_plain_conditions_are_answered_without_cel(
    source: str, record: dict[str, Any], answer: bool
) -> None:
    fast = compile_fast(source, NAMES)
    assert fast is not None
    assert fast(record) is answer
    assert cel.compile(source).execute(record) is answer


@pytest.mark.parametrize(
    ("source", "record"),
    [
        ("x >= 1000.0", {"x": None}),  # CEL: no such overload (an error, not false)
        ("x == null || x >= 1000.0", {"x": "text"}),
        ("i > 1.5", {"i": 2**60}),  # too big to be exact as a double
        ("s == 1", {"s": "a"}),
    ],
)
def test_unclear_cases_are_left_to_cel(source: str, record: dict[str, Any]) -> None:
    fast = compile_fast(source, NAMES)
    assert fast is not None
    with pytest.raises(Unsure):
        fast(record)


@pytest.mark.parametrize(
    "source",
    ["size(s) > 1", "s.startsWith('a')", "x + 1.0 > 2.0", "i in [1, 2.0]", "s == b'a'", "t.z == 1"],
)
def test_anything_else_always_goes_to_cel(source: str) -> None:
    assert compile_fast(source, NAMES) is None


def test_the_shipped_workflows_conditions_take_the_fast_path() -> None:
    """Their conditions are plain: if a change made them miss the fast path, plans would be
    several times slower without any test failing."""
    for path in sorted((ROOT / "workflows").glob("*.yaml")):
        loaded = load_workflow(path)
        assert loaded.conditions, path
        for source, condition in loaded.conditions.items():
            assert condition.fast, (path.name, source)
