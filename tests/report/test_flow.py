"""The waterfall, slipped deals and weekly totals, against hand-computed cases and, for the
waterfall's balance, against generated snapshot pairs."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.model.snapshots import SnapshotRow
from crmsync.report import flow
from crmsync.report.flow import LOST, OPEN, WON
from tests.report.rows import row

END = date(2026, 12, 31)  # the window's end in these cases
IN = date(2026, 12, 15)  # a close date inside the window
OUT = date(2027, 2, 1)  # one after it


def test_quarter_end() -> None:
    """Each month falls in its calendar quarter, December's ends the year."""
    assert flow.quarter_end(date(2026, 1, 1)) == date(2026, 3, 31)
    assert flow.quarter_end(date(2026, 5, 17)) == date(2026, 6, 30)
    assert flow.quarter_end(date(2026, 9, 30)) == date(2026, 9, 30)
    assert flow.quarter_end(date(2026, 11, 20)) == date(2026, 12, 31)


def test_every_step_by_hand() -> None:
    """One deal per step, amounts chosen so each step's sum is checkable by hand."""
    start = [
        row("a:1", "100", IN),  # stays, goes up to 150
        row("a:2", "200", IN),  # stays, goes down to 120
        row("a:3", "300", IN),  # won
        row("a:4", "400", IN),  # closed lost
        row("a:5", "50", IN),  # deleted (fate lost)
        row("a:6", "500", IN),  # still open, close date moved after the window
        row("a:7", "70", OUT),  # open, closing later: outside, then pulled in
        row("a:8", "80", None),  # no close date: never in the pipeline
        row("a:9", "90", IN),  # left the filters (fate open): pushed
    ]
    end = [
        row("a:1", "150", IN),
        row("a:2", "120", IN),
        row("a:6", "500", OUT),
        row("a:7", "75", IN),
        row("a:10", "1000", IN),  # new
        row("a:11", "5", OUT),  # new but outside the window: not counted
    ]
    fate = {"a:3": WON, "a:4": LOST, "a:5": LOST, "a:9": OPEN}
    t = flow.flow(start, end, END, fate)["USD"]
    assert t.amounts["start"] == Decimal(100 + 200 + 300 + 400 + 50 + 500 + 90)
    assert t.amounts["up"] == Decimal(50) and t.deals["up"] == 1
    assert t.amounts["down"] == Decimal(80) and t.deals["down"] == 1
    assert t.amounts["won"] == Decimal(300) and t.deals["won"] == 1
    assert t.amounts["lost"] == Decimal(450) and t.deals["lost"] == 2
    assert t.amounts["pushed"] == Decimal(590) and t.deals["pushed"] == 2
    assert t.amounts["pulled_in"] == Decimal(75) and t.deals["pulled_in"] == 1
    assert t.amounts["new"] == Decimal(1000) and t.deals["new"] == 1
    assert t.amounts["end"] == Decimal(150 + 120 + 75 + 1000)
    assert t.balance() == 0


def test_a_missing_fate_counts_as_lost() -> None:
    """A deal open at the start, gone at the end and unknown now counts as lost."""
    t = flow.flow([row("a:1", "10", IN)], [], END, {})["USD"]
    assert (t.amounts["lost"], t.amounts["won"], t.amounts["pushed"]) == (
        Decimal(10),
        Decimal(0),
        Decimal(0),
    )


def test_currencies_balance_apart() -> None:
    """Each currency has its own waterfall; a deal changing currency moves between them."""
    start = [row("a:1", "100", IN, currency="USD"), row("a:2", "40", IN, currency="EUR")]
    end = [row("a:1", "90", IN, currency="EUR"), row("a:2", "40", IN, currency="EUR")]
    out = flow.flow(start, end, END, {})
    assert out["USD"].amounts["down"] == 100 and out["USD"].amounts["end"] == 0
    assert out["EUR"].amounts["up"] == 90 and out["EUR"].amounts["end"] == 130
    assert all(t.balance() == 0 for t in out.values())


def test_missing_amount_counts_as_zero() -> None:
    """A deal without an amount counts as a deal of amount zero."""
    t = flow.flow([], [row("a:1", None, IN)], END, {})["USD"]
    assert t.deals["new"] == 1 and t.amounts["new"] == 0


# ---- the balance on generated pairs ------------------------------------------------------------

closes = st.one_of(st.none(), st.dates(min_value=date(2026, 10, 1), max_value=date(2027, 3, 31)))
amounts = st.one_of(st.none(), st.decimals(min_value=0, max_value=10**7, places=2))
currencies = st.sampled_from(["USD", "EUR", None])


Pair = tuple[list[SnapshotRow], list[SnapshotRow], dict[str, str]]


@st.composite
def pairs(draw: st.DrawFn) -> Pair:
    """Start and end rows over a shared pool of deals, and the fate of each."""
    start: list[SnapshotRow] = []
    end: list[SnapshotRow] = []
    fate: dict[str, str] = {}
    for i in range(draw(st.integers(min_value=0, max_value=25))):
        key = f"a:{i}"
        for rows in (start, end):
            if draw(st.booleans()):
                made = row(key, None, draw(closes), currency=draw(currencies))
                rows.append(replace(made, amount=draw(amounts)))
        fate[key] = draw(st.sampled_from([WON, LOST, OPEN]))
    return start, end, fate


@settings(max_examples=300, deadline=None)
@given(pairs())
def test_waterfall_balances_on_generated_pairs(data: Pair) -> None:
    """start + new + pulled in - pushed - won - lost + up - down = end, exactly, per currency,
    and every deal of the window counts in exactly one step besides start and end."""
    start, end, fate = data
    out = flow.flow(start, end, END, fate)
    for t in out.values():
        assert t.balance() == 0
    moves = flow.moves(start, end, END, fate)
    starting = {r.key for r in start if flow.in_window(r, END)}
    ending = {r.key for r in end if flow.in_window(r, END)}
    for key in starting | ending:
        steps = [m.step for m in moves if m.key == key and m.step not in ("start", "end")]
        if key in starting and key in ending:
            assert len(steps) <= 2 and set(steps) <= {"up", "down"}
        else:
            assert len(steps) == 1
    assert sum(t.amounts["end"] for t in out.values()) == sum(
        flow.amount_of(r) for r in end if flow.in_window(r, END)
    )


def test_slipped_by_hand() -> None:
    """Still open and closing later counts; earlier, unchanged or gone does not."""
    start = [
        row("a:1", close=IN),  # moved 10 days later
        row("a:2", close=IN),  # moved out of the window
        row("a:3", close=IN),  # unchanged
        row("a:4", close=IN),  # moved earlier
        row("a:5", close=IN),  # closed
        row("a:6", close=OUT),  # was outside the window
        row("a:7", close=IN),  # close date cleared
    ]
    end = [
        row("a:1", close=IN + timedelta(days=10)),
        row("a:2", close=OUT),
        row("a:3", close=IN),
        row("a:4", close=IN - timedelta(days=3)),
        row("a:6", close=OUT + timedelta(days=30)),
        row("a:7", close=None),
    ]
    found = flow.slipped(start, end, END)
    assert [s.key for s in found] == ["a:7", "a:2", "a:1"]
    assert found[1].old_close == IN and found[1].new_close == OUT


def test_pushed_often() -> None:
    """Three pushes or more, most first."""
    rows = [row("a:1"), row("a:2"), row("a:3"), row("a:4")]
    found = flow.pushed_often(rows, {"a:1": 3, "a:2": 2, "a:3": 5})
    assert [(r.key, n) for r, n in found] == [("a:3", 5), ("a:1", 3)]


def test_totals_and_week_ends() -> None:
    """Totals add amounts per currency; week ends step back 7 days from the last day."""
    rows = [
        row("a:1", "10"),
        row("a:2", "2.5"),
        row("a:3", "7", currency="EUR"),
        row("a:4", "1", currency=None),
    ]
    assert flow.totals(rows) == {"USD": Decimal("12.5"), "EUR": Decimal(7), "": Decimal(1)}
    assert flow.week_ends(date(2026, 11, 1), date(2026, 11, 20)) == [
        date(2026, 11, 6),
        date(2026, 11, 13),
        date(2026, 11, 20),
    ]
    assert flow.week_ends(date(2026, 11, 21), date(2026, 11, 20)) == []
