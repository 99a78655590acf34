"""The quota file and coverage: hand-computed coverage, and each way a file can be wrong."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from crmsync.errors import InvalidInput
from crmsync.report.coverage import coverage, parse_quotas
from tests.report.rows import row

HEADER = "owner_or_team,period_start,period_end,amount,currency\n"


def test_parse_and_cover_by_hand() -> None:
    """Pipeline of the line's owners, in its currency, closing in its period, over its quota."""
    text = HEADER + "u1,2026-10-01,2026-12-31,1000,usd\n\nteam-a,2026-10-01,2026-12-31,400,USD\n"
    quotas = parse_quotas(text, "quota.csv")
    assert [(q.line, q.who, q.amount, q.currency) for q in quotas] == [
        (2, "u1", Decimal(1000), "USD"),
        (4, "team-a", Decimal(400), "USD"),
    ]
    rows = [
        row("a:1", "1500", date(2026, 11, 1), owner="u1"),
        row("a:2", "1500", date(2027, 1, 1), owner="u1"),  # after the period
        row("a:3", "700", date(2026, 12, 31), owner="u1", currency="EUR"),  # other currency
        row("a:4", "500", date(2026, 10, 1), owner="u2"),
        row("a:5", "300", None, owner="u2"),  # no close date
    ]
    teams = {"u1": {"u1"}, "team-a": {"u1", "u2"}}
    out = coverage(quotas, rows, lambda who: teams.get(who, set()))
    assert [(c.pipeline, c.deals, c.ratio) for c in out] == [
        (Decimal(1500), 1, 1.5),
        (Decimal(2000), 2, 5.0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("owner,start,end,amount,currency\n", "quota.csv, line 1: the header must be"),
        ("", "quota.csv, line 1: the header must be"),
        (HEADER + "u1,2026-10-01,2026-12-31,1000\n", "quota.csv, line 2: expected 5 fields"),
        (HEADER + "u1,2026-13-01,2026-12-31,1000,USD\n", "line 2, period_start: '2026-13-01'"),
        (HEADER + "u1,2026-10-01,soon,1000,USD\n", "line 2, period_end: 'soon' is not a date"),
        (HEADER + "u1,2026-10-01,2026-09-01,1000,USD\n", "line 2, period_end: 2026-09-01 is"),
        (HEADER + "u1,2026-10-01,2026-12-31,lots,USD\n", "line 2, amount: 'lots' is not a"),
        (HEADER + "u1,2026-10-01,2026-12-31,-5,USD\n", "line 2, amount: '-5'"),
        (HEADER + "u1,2026-10-01,2026-12-31,NaN,USD\n", "line 2, amount: 'NaN'"),
        (HEADER + "u1,2026-10-01,2026-12-31,10,\n", "line 2, currency: empty"),
        (HEADER + "\n,2026-10-01,2026-12-31,10,USD\n", "line 3, owner_or_team: empty"),
    ],
)
def test_a_malformed_file_names_line_and_field(text: str, message: str) -> None:
    """Every mistake is one InvalidInput (exit 2) naming the file, the line and the field."""
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")) as caught:
        parse_quotas(text, "quota.csv")
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value)
