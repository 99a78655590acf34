"""Pipeline by stage, stay percentiles, aging, conversion and velocity against hand-computed
cases."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.report import stages
from crmsync.workflows.percentiles import StageDurations
from tests.report.rows import row


def test_by_stage_by_hand() -> None:
    """Count, amount and amount x probability / 100 per currency and stage, in stage order."""
    rows = [
        row("a:1", "1000", stage="proposal", probability=60.0),
        row("a:2", "500", stage="proposal", probability=None),  # weighs nothing
        row("a:3", "200", stage="qualified", probability=10.0),
        row("a:4", None, stage="qualified", probability=10.0),
        row("a:5", "300", stage=None, probability=25.0),
        row("a:6", "80", stage="negotiation", probability=12.5, currency="EUR"),
    ]
    out = stages.by_stage(rows)
    assert list(out) == ["EUR", "USD"]
    usd = out["USD"]
    assert list(usd) == ["qualified", "proposal", "unmapped"]
    assert (usd["proposal"].count, usd["proposal"].amount) == (2, Decimal(1500))
    assert usd["proposal"].weighted == Decimal(600)
    assert (usd["qualified"].count, usd["qualified"].weighted) == (2, Decimal(20))
    assert usd["unmapped"].weighted == Decimal(75)
    assert out["EUR"]["negotiation"].weighted == Decimal(10)


def test_by_connection_by_hand() -> None:
    """Count, amount and weighted amount per (connection, currency)."""
    rows = [
        row("sf:1", "100", probability=50.0),
        row("sf:2", "300", probability=10.0),
        row("hs:1", "40", probability=25.0, currency="EUR"),
    ]
    out = stages.by_connection(rows)
    assert list(out) == [("hs", "EUR"), ("sf", "USD")]
    assert (out[("sf", "USD")].count, out[("sf", "USD")].amount) == (2, Decimal(400))
    assert out[("sf", "USD")].weighted == Decimal(80)
    assert out[("hs", "EUR")].weighted == Decimal(10)


def test_nearest_rank() -> None:
    """The smallest value with at least that share at or below it."""
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert stages.nearest_rank(values, 50) == 3.0
    assert stages.nearest_rank(values, 75) == 4.0
    assert stages.nearest_rank(values, 90) == 5.0
    assert stages.nearest_rank(values, 20) == 1.0
    assert stages.nearest_rank([], 50) is None


def test_stay_stats_by_hand() -> None:
    """Whole days for the percentiles, exact days for the mean; closed stages are ignored."""
    stays = [("proposal", d) for d in (1.5, 2.2, 3.9, 10.0)] + [("closed_won", 4.0)]
    out = stages.stay_stats(stays)
    p = out["proposal"]
    assert p.stays == 4
    assert p.mean_days == (1.5 + 2.2 + 3.9 + 10.0) / 4
    assert p.percentiles == {50: 2.0, 75: 3.0, 90: 10.0}
    assert out["qualified"].stays == 0 and out["qualified"].percentiles[50] is None
    assert "closed_won" not in out


def test_aging_by_hand() -> None:
    """Median days in stage now and how many are past the stage's p90 (in whole days)."""
    stats = stages.stay_stats([("proposal", float(d)) for d in range(1, 11)])  # p90 = 9
    now: list[tuple[str | None, float]] = [("proposal", 2.0), ("proposal", 9.9)]
    now += [("proposal", 10.0), ("proposal", 30.0), ("qualified", 4.0), (None, 3.0)]
    ages = {a.stage: a for a in stages.aging(now, stats)}
    assert ages["proposal"].deals == 4
    assert ages["proposal"].median_days == 9.9
    assert ages["proposal"].over_p90 == 2
    assert (ages["qualified"].deals, ages["qualified"].over_p90) == (1, 0)  # no stays: no p90
    assert ages["discovery"].median_days is None


def test_conversion_by_hand() -> None:
    """Moved on: a later open stage or won; still in the stage: not decided yet."""
    paths = [
        ("qualified", "discovery", "proposal", "closed_won"),
        ("qualified", "discovery", "closed_lost"),
        ("qualified", "closed_lost"),
        ("qualified",),  # still there
        ("discovery", "qualified"),  # went back: decided for discovery, not moved on
        ("qualified", "proposal"),  # skipped discovery
    ]
    out = {c.stage: c for c in stages.conversion(paths)}
    q = out["qualified"]
    # moved on: paths 1, 2, 6; decided besides: path 3; paths 4 and 5 sit in qualified now
    assert (q.entered, q.decided, q.moved_on) == (6, 4, 3)
    assert q.rate == 3 / 4
    d = out["discovery"]
    assert (d.entered, d.decided, d.moved_on) == (3, 3, 1)
    assert d.rate == 1 / 3
    assert out["negotiation"].rate is None
    assert stages.path_of((("qualified", 2.0), ("proposal", 1.0)), "closed_won") == (
        "qualified",
        "proposal",
        "closed_won",
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-2.0, max_value=3000.0), min_size=1, max_size=60))
def test_percentiles_agree_with_the_stuck_deal_rules(days: list[float]) -> None:
    """The report's p50/p75/p90 are the thresholds the workflows' StageDurations gives."""
    durations = StageDurations(min_samples=1)
    for d in days:
        durations.add(None, "proposal", d)
    stats = stages.stay_stats(("proposal", d) for d in days)["proposal"]
    for p in stages.PERCENTILES:
        assert stats.percentiles[p] == durations.threshold(None, "proposal", p)
