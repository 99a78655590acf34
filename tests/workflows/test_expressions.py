"""Workflow conditions: CEL over opportunities, compile-time checks and the runtime policy."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from crmsync.model import FIELDS, Opportunity
from crmsync.workflows.expressions import (
    ConditionFailed,
    ExpressionError,
    cel_context,
    compile_condition,
    to_cel,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
VARIABLES: dict[str, str] = {name: spec.type for name, spec in FIELDS.items()}
VARIABLES |= {
    "custom": "map",
    "today": "date",
    "skipped_stages": "list",
    "days_since_activity": "float",
    "close_date_push_count": "int",
}


def record(**changes: Any) -> dict[str, Any]:
    """One opportunity, as conditions see it (through `cel_context`), with `changes` applied."""
    opp = Opportunity(
        connection="sf",
        native_id="006A",
        source="salesforce",
        name="Acme renewal",
        modified_at=NOW,
        owner_email="jane@acme.com",
        stage_canonical="proposal",
        amount=Decimal("25000.00"),
        probability=60.0,
        close_date=date(2026, 12, 15),
        next_step="Send the order form",
        last_activity_at=datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
        created_at=datetime(2026, 9, 1, 10, 0, tzinfo=UTC),
        custom={"days_since_last_touch": 19, "region": "EMEA"},
    )
    values = {f.name: getattr(opp, f.name) for f in dataclasses.fields(opp)}
    values |= {
        "today": date(2026, 11, 20),
        "skipped_stages": ["discovery"],
        "days_since_activity": 19.1,
        "close_date_push_count": 2,
    }
    values.update(changes)
    return cel_context(values)


def run(source: str, **changes: Any) -> bool:
    """Compile `source` and evaluate it on one record."""
    return compile_condition(source, VARIABLES)(record(**changes))


def compile_error(source: str) -> ExpressionError:
    """The error compiling `source` raises."""
    with pytest.raises(ExpressionError) as caught:
        compile_condition(source, VARIABLES)
    return caught.value


def failure(source: str, **changes: Any) -> str:
    """The one-line message of the `ConditionFailed` evaluating `source` raises."""
    condition = compile_condition(source, VARIABLES)
    with pytest.raises(ConditionFailed) as caught:
        condition(record(**changes))
    assert caught.value.column is None
    return caught.value.message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("amount >= 10000.0 && !is_closed", True),
        ("amount >= 10000 && !is_closed", True),
        ("amount >= 100000.0 || is_closed", False),
        ('stage_canonical == "proposal" && probability >= 50.0', True),
        ('stage_canonical in ["negotiation", "closed_won"]', False),
        ('owner_email.endsWith("@acme.com")', True),
        ('owner_email.upperAscii().endsWith("@ACME.COM")', True),
        ('name.lowerAscii().contains("renewal")', True),
        ('name.startsWith("Acme") && name.matches("^Acme\\\\s")', True),
        ("size(next_step) > 3", True),
        ('trim(" x ") == "x"', True),
        ("custom.days_since_last_touch > 14", True),
        ('has(custom.region) && custom.region == "EMEA"', True),
        ("has(custom.segment)", False),
        ('custom["days_since_last_touch"] == 19', True),
        ("close_date > today", True),
        ('close_date <= "2026-12-31"', True),
        ('close_date < "2026-12-01"', False),
        ('last_activity_at < timestamp("2026-11-10T00:00:00Z")', True),
        ("last_activity_at.getFullYear() == 2026 && last_activity_at.getMonth() == 10", True),
        ('timestamp(today + "T00:00:00Z") - last_activity_at > duration("336h")', True),
        ("days_between(last_activity_at, today) == 19", True),
        ("days_between(today, close_date) <= 30", True),
        ("close_date <= add_days(today, 30)", True),
        ('add_days("2026-12-30", 3) == "2027-01-02"', True),
        ('date(created_at) == "2026-09-01"', True),
        ("days_since_activity > 14.0 && close_date_push_count >= 2", True),
        ('skipped_stages.exists(s, s == "discovery")', True),
        ("skipped_stages.all(s, s != owner_email)", True),
        ("[1, 2, 3].filter(n, n > 1).size() == 2", True),
        ("[amount, probability].exists_one(v, v > 1000.0)", True),
        ("type(amount) == double", True),
    ],
)
def test_typical_conditions(source: str, expected: bool) -> None:
    """Conditions admins write over the model's fields evaluate as expected."""
    assert run(source) is expected


@pytest.mark.parametrize(
    ("source", "changes", "expected"),
    [
        ("amount == null", {"amount": None}, True),
        ("amount != null && amount > 10.0", {"amount": None}, False),
        ("amount == null || amount >= 1000.0", {"amount": None}, True),
        ("amount > 10.0 && false", {"amount": None}, False),  # && forgives an error it can skip
        ('owner_email.lowerAscii() == "x"', {"owner_email": None}, False),
        ("close_date != null && days_between(close_date, today) > 0", {"close_date": None}, False),
    ],
)
def test_null_handling(source: str, changes: dict[str, Any], expected: bool) -> None:
    """Guarded comparisons and null-propagating helpers give false, not an error, for null."""
    assert run(source, **changes) is expected


@pytest.mark.parametrize(
    ("source", "changes", "message"),
    [
        (
            "amount > 10.0",
            {"amount": None},
            "cannot compare or combine a null value; amount is null (empty) for this record: "
            "guard with `amount != null && ...`",
        ),
        (
            'owner_email.endsWith("@acme.com")',
            {"owner_email": None},
            "endsWith() cannot be used on this value; owner_email is null (empty) for this "
            "record: guard with `owner_email != null && ...`",
        ),
        (
            "custom.segment == 'SMB'",
            {},
            "no 'segment' in this record (guard with has(custom.segment))",
        ),
        ("custom.days_since_last_touch", {}, "condition must be true or false, got 19"),
        (
            "custom.region",
            {},
            'condition must be true or false, got "EMEA"',
        ),
        ("custom.days_since_last_touch / 0 > 1", {}, "division by zero"),
        ("skipped_stages[3] == 'x'", {}, "list index out of bounds: 3"),
        (
            "days_between(close_date, today) > 0",
            {"close_date": None},
            "cannot compare or combine a null value; close_date is null (empty) for this record: "
            "guard with `close_date != null && ...`",
        ),
        (
            "days_between(close_date, today) > 0",
            {"close_date": "soon"},
            'days_between() needs a "YYYY-MM-DD" date, got "soon"',
        ),
    ],
)
def test_runtime_failures(source: str, changes: dict[str, Any], message: str) -> None:
    """A record that cannot be evaluated raises ConditionFailed with a one-line message."""
    assert failure(source, **changes) == message


def test_missing_variable_in_context() -> None:
    """A context without a referenced name fails that record, naming what is missing."""
    condition = compile_condition("amount > 1.0 && !is_closed", VARIABLES)
    with pytest.raises(ConditionFailed, match=r"^no value for 'amount' in this record$"):
        condition({"is_closed": False})


def test_condition_failed_is_an_expression_error() -> None:
    """Callers that catch ExpressionError also catch per-record failures."""
    assert issubclass(ConditionFailed, ExpressionError)
    assert issubclass(ExpressionError, ValueError)


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        (
            "amount >= ",
            "syntax error: mismatched input '<EOF>' (the expression ends too early)",
            11,
        ),
        ("amount >= 10 &&& is_closed", "syntax error: unrecognized text '&'", 16),
        ('name == "Acme', "syntax error: unrecognized text '\"Acme'", 9),
        ("amount >\n  && is_closed", "syntax error: extraneous input '&&'", 12),
        ("", "the condition is empty", 1),
        (
            "has(amount)",
            "syntax error: has() takes a map key such as has(custom.region); "
            "for a field use `amount != null`",
            5,
        ),
        ("amout > 5.0", "unknown field 'amout' (did you mean 'amount'?)", 1),
        ("!is_closed && amout > 5.0", "unknown field 'amout' (did you mean 'amount'?)", 15),
        ('name == "amout" || amout > 1.0', "unknown field 'amout' (did you mean 'amount'?)", 20),
        ("Amount > 5.0", "unknown field 'Amount' (did you mean 'amount'?)", 1),
        (
            "is_closed && stage_canon == 'x'",
            "unknown field 'stage_canon' (did you mean 'stage_canonical'?)",
            14,
        ),
        ("zzz", "unknown field 'zzz'", 1),
        (
            'owner_email.endswith("@acme.com")',
            "unknown function 'endswith' (did you mean 'endsWith'?)",
            13,
        ),
        (
            "days_betwen(close_date, today) > 1",
            "unknown function 'days_betwen' (did you mean 'days_between'?)",
            1,
        ),
        (
            "skipped_stages.exists(s)",
            "exists() takes a variable name and a condition, as in items.exists(x, x > 0)",
            16,
        ),
    ],
)
def test_compile_errors(source: str, message: str, column: int) -> None:
    """Each mistake gives one line saying what is wrong, and the column where."""
    error = compile_error(source)
    assert (error.message, error.column) == (message, column)
    assert str(error) == message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("amount", "condition must be true or false, but it gives a number", None),
        ("name", "condition must be true or false, but it gives text", None),
        (
            'close_date < timestamp("2026-01-01T00:00:00Z")',
            "type mismatch: an operator or function is given values of the wrong type (dates "
            'are "YYYY-MM-DD" text, amounts are doubles such as 10000.0)',
            None,
        ),
        (
            "amount + 1 > 2.0",
            "type mismatch: cannot compute double + int; CEL does not mix int and double "
            "(write 10.0 rather than 10, or convert with double(...))",
            None,
        ),
        (
            'amount.endsWith("0")',
            "type mismatch: endsWith() cannot be used on this kind of value",
            8,
        ),
    ],
)
def test_type_mistakes_caught_at_compile_time(
    source: str, message: str, column: int | None
) -> None:
    """Mistakes that would fail on every record are reported when the workflow loads."""
    error = compile_error(source)
    assert (error.message, error.column) == (message, column)


def test_comprehension_variables_are_not_fields() -> None:
    """Names bound by exists/all/map/filter are not reported, nor handed to CEL."""
    condition = compile_condition(
        'skipped_stages.exists(s, s == "discovery") && [1, 2].map(n, n * 2).all(m, m > 0)',
        VARIABLES,
    )
    assert condition.variables == ("skipped_stages",)
    assert condition(record()) is True


def test_variables_lists_referenced_fields() -> None:
    """`variables` holds the declared names the condition uses, sorted, and nothing else."""
    condition = compile_condition(
        'amount > 1.0 && owner_email.endsWith("@acme.com") && type(amount) == double', VARIABLES
    )
    assert condition.variables == ("amount", "owner_email")
    assert condition.source.startswith("amount > 1.0")


def test_condition_reads_only_what_it_references() -> None:
    """A context may carry unconvertible extras the condition does not use."""
    condition = compile_condition("amount > 1.0", VARIABLES)
    assert condition({"amount": 2.0, "unused": object()}) is True


def test_unknown_type_name_is_a_programming_error() -> None:
    """A variable type outside the documented set is a ValueError, not an ExpressionError."""
    with pytest.raises(ValueError, match="unknown variable type"):
        compile_condition("x", {"x": "money"})


def test_expression_error_pickles_with_its_column() -> None:
    """The column survives pickling (errors may cross process boundaries)."""
    error = pickle.loads(pickle.dumps(ExpressionError("bad", column=7)))
    assert (type(error), error.message, error.column) == (ExpressionError, "bad", 7)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12500.50"), 12500.5),
        (date(2026, 11, 26), "2026-11-26"),
        (None, None),
        (True, True),
        (3, 3),
        ("x", "x"),
        ((Decimal("1"), date(2026, 1, 2)), [1.0, "2026-01-02"]),
        ({"a": {"b": Decimal("2")}, "d": date(2026, 1, 1)}, {"a": {"b": 2.0}, "d": "2026-01-01"}),
        (timedelta(days=1), timedelta(days=1)),
    ],
)
def test_to_cel(value: Any, expected: Any) -> None:
    """Python values become what CEL compares: doubles, ISO date text, nested containers."""
    converted = to_cel(value)
    assert converted == expected
    assert type(converted) is type(expected)


def test_to_cel_datetimes() -> None:
    """Aware datetimes pass through as CEL timestamps; naive ones are taken as UTC."""
    aware = datetime(2026, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert to_cel(aware) is aware
    assert to_cel(datetime(2026, 11, 20, 9, 0)) == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    condition = compile_condition(
        'last_activity_at == timestamp("2026-11-20T14:00:00Z")', VARIABLES
    )
    assert condition(cel_context({"last_activity_at": aware})) is True


def test_cel_context_converts_nested_values() -> None:
    """cel_context converts every value of a record, custom maps included."""
    context = cel_context({"amount": Decimal("5"), "custom": {"due": date(2026, 1, 1)}})
    assert context == {"amount": 5.0, "custom": {"due": "2026-01-01"}}
