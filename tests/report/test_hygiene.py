"""Findings by rule and by owner, and the hygiene score, against hand-computed cases."""

from __future__ import annotations

from datetime import date

from crmsync.report import hygiene
from crmsync.report.hygiene import Finding
from tests.report.rows import row


def test_by_rule_and_by_owner() -> None:
    """Counts per (workflow, rule) and per owner, most first; an owner's deals counted once."""
    found = [
        Finding("hygiene", "no_next_step", "a:1", "u1"),
        Finding("hygiene", "past_close", "a:1", "u1"),
        Finding("hygiene", "no_next_step", "a:2", "u2"),
        Finding("stuck", "too_long", "a:3", None),
        Finding("hygiene", "no_next_step", "a:4", "u1"),
    ]
    assert hygiene.by_rule(found) == [
        ("hygiene", "no_next_step", 3),
        ("hygiene", "past_close", 1),
        ("stuck", "too_long", 1),
    ]
    assert hygiene.by_owner(found) == [("u1", 3, 2), ("", 1, 1), ("u2", 1, 1)]


def test_scores_by_hand() -> None:
    """An owner's score is the share of their open deals without an open finding."""
    rows = [
        row("a:1", owner="u1", findings=0),
        row("a:2", owner="u1", findings=2),
        row("a:3", owner="u1", findings=0),
        row("a:4", owner="u2", findings=1),
        row("a:5", owner=None, findings=0),
    ]
    got = {s.owner_id: (s.deals, s.clean, s.score) for s in hygiene.scores(rows)}
    assert got == {"u1": (3, 2, 2 / 3), "u2": (1, 0, 0.0), "": (1, 1, 1.0)}
    assert hygiene.overall(rows) == 3 / 5
    assert hygiene.overall([]) is None


def test_score_trend() -> None:
    """A point per day an owner held open deals, oldest first."""
    d1, d2 = date(2026, 11, 6), date(2026, 11, 13)
    days = {
        d2: hygiene.scores([row("a:1", owner="u1", findings=0, day=d2)]),
        d1: hygiene.scores(
            [row("a:1", owner="u1", findings=1, day=d1), row("a:2", owner="u2", day=d1)]
        ),
    }
    assert hygiene.score_trend(days) == {"u1": [(d1, 0.0), (d2, 1.0)], "u2": [(d1, 1.0)]}


def test_lowest_scores_among_owners_with_enough_deals() -> None:
    """The n lowest scores of owners with at least `at_least` deals; ties: more deals first."""
    scores = [
        hygiene.Score("u1", 2, 0),  # 0 %, but too few deals to chart
        hygiene.Score("u2", 5, 1),  # 20 %
        hygiene.Score("u3", 10, 2),  # 20 %, more deals: before u2
        hygiene.Score("u4", 6, 3),  # 50 %
        hygiene.Score("u5", 8, 8),  # 100 %
    ]
    lowest, eligible = hygiene.lowest_scores(scores, at_least=5, n=3)
    assert [s.owner_id for s in lowest] == ["u3", "u2", "u4"] and eligible == 4
    everyone, eligible = hygiene.lowest_scores(scores[:1], at_least=5, n=3)
    assert [s.owner_id for s in everyone] == ["u1"] and eligible == 1  # none qualifies: all do
