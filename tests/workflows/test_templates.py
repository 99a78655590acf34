"""Task templates: rendering with the sales filters, load-time checks, and the sandbox."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.workflows.templates import (
    TemplateError,
    compile_template,
    date_filter,
    days,
    money,
)

VARIABLES = (
    "name",
    "account_name",
    "amount",
    "close_date",
    "days_since_activity",
    "last_activity_at",
    "custom",
    "reasons",
    "stage_canonical",
)
RECORD: dict[str, Any] = {
    "name": "Acme renewal",
    "account_name": None,
    "amount": Decimal("12500"),
    "close_date": date(2026, 11, 20),
    "days_since_activity": 23.2,
    "last_activity_at": datetime(2026, 10, 28, 15, 0, tzinfo=UTC),
    "custom": {"region": "EMEA"},
    "reasons": ["no champion", "no pain"],
    "stage_canonical": "proposal",
}


def render(source: str, **changes: Any) -> str:
    """Compile `source` against VARIABLES and render it for RECORD with `changes`."""
    return compile_template(source, VARIABLES).render(RECORD | changes)


def compile_error(source: str) -> TemplateError:
    """The error compiling `source` raises."""
    with pytest.raises(TemplateError) as caught:
        compile_template(source, VARIABLES)
    return caught.value


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "{{ name }}: no activity for {{ days_since_activity|days }}",
            "Acme renewal: no activity for 23 days",
        ),
        ("{{ amount|money }} closing {{ close_date|date }}", "12,500 closing 2026-11-20"),
        (
            "{{ last_activity_at|date }} / {{ last_activity_at|date('%d %b %Y') }}",
            "2026-10-28 / 28 Oct 2026",
        ),
        ('{{ account_name or "no account" }}', "no account"),
        ("[{{ account_name }}]", "[]"),
        ('{{ reasons|join("; ") }}.', "no champion; no pain."),
        ("{% for r in reasons %}- {{ r }}\n{% endfor %}", "- no champion\n- no pain\n"),
        ("{{ custom.region }} {{ stage_canonical|title }}", "EMEA Proposal"),
        ("{% if custom.segment is defined %}{{ custom.segment }}{% else %}-{% endif %}", "-"),
        ("{{ name|upper }} {{ days_since_activity|round|int }}", "ACME RENEWAL 23"),
    ],
)
def test_rendering(source: str, expected: str) -> None:
    """Templates render record values through the sales filters and Jinja's own."""
    assert render(source) == expected


def test_plain_text_is_not_escaped() -> None:
    """Autoescaping is off: task text is plain text, so & and < stay as written."""
    assert render("{{ name }}", name="R&D <EU>") == "R&D <EU>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12500"), "12,500"),
        (Decimal("1234567.891"), "1,234,567.89"),
        (Decimal("0.005"), "0.01"),
        (Decimal("0.004"), "0"),
        (Decimal("-0.004"), "0"),
        (1234.5, "1,234.50"),
        (-50, "-50"),
        ("99.5", "99.50"),
        (None, ""),
    ],
)
def test_money(value: Any, expected: str) -> None:
    """money: thousands separators, cents rounded half up and left out when zero; None is
    empty."""
    assert money(value) == expected


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("USD", "USD 135,100"),
        (" eur ", "EUR 135,100"),
        (None, "135,100"),
        ("US Dollars", "135,100"),  # not an ISO code: not shown
        ("U$D", "135,100"),
    ],
)
def test_money_shows_the_currency_code(currency: Any, expected: str) -> None:
    """money leads with the deal's ISO 4217 code, and shows nothing it cannot trust as one."""
    assert money(Decimal("135100.00"), currency) == expected


@pytest.mark.parametrize(
    ("source", "currency", "expected"),
    [
        ("{{ amount|money }}", "USD", "USD 12,500"),
        ("{{ amount|money }}", None, "12,500"),
        ('{{ amount|money("GBP") }}', "USD", "GBP 12,500"),
        ("{% if amount %}{{ (amount * 2)|money }}{% endif %}", "EUR", "EUR 25,000"),
    ],
)
def test_money_in_a_template_uses_the_records_currency(
    source: str, currency: str | None, expected: str
) -> None:
    """A template's money shows the record's currency, on the fast path and through Jinja."""
    template = compile_template(source, [*VARIABLES, "currency"])
    assert "currency" in template.variables  # the values reader fetches it
    assert template.render(RECORD | {"currency": currency}) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (23.2, "23 days"),
        (23.9, "23 days"),
        (14.999, "14 days"),
        (1.4, "1 day"),
        (0.5, "0 days"),
        (0.2, "0 days"),
        (2, "2 days"),
        (Decimal("7.99"), "7 days"),
        (-1, "-1 day"),
        (timedelta(hours=36), "1 day"),
        (None, ""),
    ],
)
def test_days(value: Any, expected: str) -> None:
    """days: completed days (the floor, as the rules compare them), singular for one."""
    assert days(value) == expected


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.floats(0, 2e9, allow_nan=False),
        st.integers(0, 10**6).map(lambda n: n + 0.5),
        st.integers(0, 10**6).map(lambda n: n + 0.5 - 2e-7),
        st.integers(0, 10**6).map(lambda n: n + 0.5 + 2e-7),
    )
)
def test_days_of_a_float_is_the_floor_of_its_decimal_text(value: float) -> None:
    """The float shortcut gives what exact decimal flooring of the value's text gives."""
    whole = int(Decimal(str(value)).to_integral_value(rounding=ROUND_FLOOR))
    assert days(value) == (f"{whole} day" if whole == 1 else f"{whole} days")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2026, 11, 20), "2026-11-20"),
        (datetime(2026, 11, 20, 23, 59, tzinfo=UTC), "2026-11-20"),
        ("2026-11-20", "2026-11-20"),
        ("2026-11-20T08:00:00Z", "2026-11-20"),
        (None, ""),
    ],
)
def test_date(value: Any, expected: str) -> None:
    """date: dates, timestamps and ISO text as YYYY-MM-DD; None is empty."""
    assert date_filter(value) == expected


@pytest.mark.parametrize(
    ("source", "message", "line", "column"),
    [
        ("{{ nmae }}", "unknown variable 'nmae' (did you mean 'name'?)", 1, 4),
        (
            "Hi\n{{ name }} / {{ ammount|money }}",
            "line 2: unknown variable 'ammount' (did you mean 'amount'?)",
            2,
            17,
        ),
        ("{{ zzz }}", "unknown variable 'zzz'", 1, 4),
        ("{{ amount|monye }}", "unknown filter 'monye' (did you mean 'money'?)", 1, None),
        ("{{ name is strng }}", "unknown test 'strng' (did you mean 'string'?)", 1, None),
        ("{{ name }", "syntax error: unexpected '}'", 1, None),
        (
            "{{ name }}\n{% if amount %}\nbig\n{% endfor %}",
            "line 4: syntax error: Encountered unknown tag 'endfor'. Jinja was looking for the "
            "following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be "
            "closed is 'if'.",
            4,
            None,
        ),
        ("{{ name.__class__ }}", "access to '__class__' is not allowed", 1, None),
        ("{{ custom['__len__'] }}", "access to '__len__' is not allowed", 1, None),
    ],
)
def test_compile_errors(source: str, message: str, line: int, column: int | None) -> None:
    """Template mistakes are one line, with the template line (and column when known)."""
    error = compile_error(source)
    assert (str(error), error.line, error.column) == (message, line, column)
    assert "\n" not in str(error)


def test_loop_and_set_names_are_not_unknown() -> None:
    """Names a template defines itself (loop variables, set) and Jinja globals are allowed."""
    template = compile_template(
        "{% set n = reasons|length %}{% for r in reasons %}{{ loop.index }}.{{ r }} {% endfor %}"
        "{{ n }} {{ range(2)|list }}",
        VARIABLES,
    )
    assert template.variables == ("reasons",)
    assert template.render(RECORD) == "1.no champion 2.no pain 2 [0, 1]"


def test_sandbox_blocks_unsafe_access_at_render() -> None:
    """An unsafe attribute reached dynamically is refused by the sandbox when rendering."""
    template = compile_template("{{ name[attr] }}", [*VARIABLES, "attr"])
    with pytest.raises(TemplateError) as caught:
        template.render(RECORD | {"attr": "__class__"})
    assert str(caught.value) == (
        "cannot render: access to attribute '__class__' of 'str' object is unsafe."
    )


def test_sandbox_blocks_mutating_calls() -> None:
    """Methods that change a value (list.append) are refused when the template is compiled,
    and by the sandbox at render time when reached another way (a subscript)."""
    assert str(compile_error("{{ reasons.append('x') }}")) == (
        "'.append' changes a value: not allowed in a task text"
    )
    template = compile_template("{{ reasons['append']('x') }}", VARIABLES)
    with pytest.raises(TemplateError) as caught:
        template.render(RECORD)
    assert str(caught.value) == (
        "cannot render: access to attribute 'append' of 'list' object is unsafe."
    )


@pytest.mark.parametrize(
    ("source", "changes", "message", "line"),
    [
        (
            "Hi\n{{ custom.segment }}",
            {},
            "line 2: cannot render: no 'segment' in this record (guard with "
            "{% if custom.segment is defined %})",
            2,
        ),
        (
            "{{ amount|money }}",
            {"amount": "lots"},
            "cannot render: money needs a number, got 'lots'",
            1,
        ),
    ],
)
def test_render_errors(source: str, changes: dict[str, Any], message: str, line: int) -> None:
    """A record that cannot fill the template raises a one-line TemplateError."""
    template = compile_template(source, VARIABLES)
    with pytest.raises(TemplateError) as caught:
        template.render(RECORD | changes)
    assert (str(caught.value), caught.value.line) == (message, line)


def test_missing_variable_at_render() -> None:
    """A context without a declared name fails the render (StrictUndefined), not silently."""
    template = compile_template("{{ name }} {{ amount|money }}", VARIABLES)
    with pytest.raises(TemplateError, match=r"^cannot render: 'amount' is undefined$"):
        template.render({"name": "x"})


def test_template_error_pickles() -> None:
    """Line and column survive pickling."""
    error = pickle.loads(pickle.dumps(TemplateError("bad", 3, 4, multiline=True)))
    assert (str(error), error.message, error.line, error.column) == ("line 3: bad", "bad", 3, 4)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1e26"), "100,000,000,000,000,000,000,000,000"),
        (1e26, "100,000,000,000,000,000,000,000,000"),
        (Decimal("-12.345"), "-12.35"),
    ],
)
def test_money_shows_large_amounts(value: Any, expected: str) -> None:
    """money shows amounts up to 1e30 in full (the default decimal precision stops at 1e26)."""
    assert money(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal("1e30"), "money needs an amount below 1e30, got 1.000e+30"),
        ("Acme" * 20, "money needs a number, got 'AcmeAcmeAcmeAcmeAcmeAcmeAcmeAcmeAcmeAc…"),
        (float("nan"), "money needs a finite number, got nan"),
    ],
)
def test_money_refuses_what_it_cannot_show_in_one_line(value: Any, message: str) -> None:
    """money fails with a short one-line reason, never an arithmetic traceback."""
    with pytest.raises((TypeError, ValueError)) as caught:
        money(value)
    assert str(caught.value) == message


def test_decimal_and_float_compute_as_decimal() -> None:
    """An amount (Decimal) times a float literal works: the float is taken as written."""
    assert render("{{ (amount * 0.1)|money }}") == "1,250"
    assert render("{{ 0.5 + amount }}") == "12500.5"


def test_render_is_cut_to_its_limit() -> None:
    """A render gives at most `limit` characters, the last an ellipsis."""
    template = compile_template("{{ name }}{% for r in reasons %}{{ r }}{% endfor %}", VARIABLES)
    assert template.render(RECORD, 5) == "Acme…"
    assert compile_template("{{ name }}", VARIABLES).render(RECORD, 5) == "Acme…"
