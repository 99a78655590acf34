"""The hygiene section's charts by owner: a readable few owners, a note saying what is left
out, every owner in the table, and no score for days whose findings were not known yet."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from crmsync.model.snapshots import SnapshotRow
from crmsync.report.document import Chart, Section, Table
from crmsync.report.hygiene import Finding
from crmsync.report.hygiene_section import CHART_OWNERS, MIN_DEALS, TREND_OWNERS, hygiene_section
from crmsync.report.inputs import Inputs
from crmsync.report.weeks import week_figures
from tests.report.rows import row

UNTIL = date(2026, 11, 20)
END = date(2026, 12, 31)
OWNERS = 30  # more than the charts show


def _end_rows(day: date = UNTIL) -> list[SnapshotRow]:
    """Owner o<i> (i = 0..29) holds 6 open deals, i % 7 of them flagged (o06, o13, o20 and o27:
    all 6); x1 holds one flagged deal, too few to chart."""
    rows = [
        row(f"a:{i}-{k}", owner=f"o{i:02}", findings=int(k < i % 7), day=day)
        for i in range(OWNERS)
        for k in range(MIN_DEALS + 1)
    ]
    rows.append(row("a:x", owner="x1", findings=1, day=day))  # 0 % over one deal
    return rows


def _findings() -> list[Finding]:
    """Owner o<i> has i findings (o0 none): 29 owners with any."""
    return [Finding("w", "r", f"a:{i}-0", f"o{i:02}") for i in range(OWNERS) for _ in range(i)]


def _section(**changes: object) -> Section:
    values: dict[str, object] = dict(
        since=UNTIL - timedelta(weeks=3),
        until=UNTIL,
        window_end=END,
        generated_at=datetime(2026, 11, 20, 12, tzinfo=UTC),
        scope=(),
        end=_end_rows(),
        findings=_findings(),
    )
    values.update(changes)
    return hygiene_section(Inputs(**values))  # type: ignore[arg-type]


def _item(section: Section, id: str) -> Chart | Table:
    return next(i for i in section.items if i.id == id)


def test_findings_chart_shows_the_owners_with_most_and_says_so() -> None:
    """20 bars, most findings first (o29 with 29 down to o10 with 10); the note counts the rest."""
    chart = _item(_section(), "findings-by-owner")
    assert isinstance(chart, Chart)
    (series,) = chart.series
    assert series.x == tuple(f"o{i}" for i in range(29, 9, -1))
    assert series.y == tuple(float(i) for i in range(29, 9, -1))
    assert len(series.x) == CHART_OWNERS
    assert "The 20 owners with the most open findings today, of the 29 with any" in chart.note
    assert "lists all 31 owners" in chart.note


def test_score_chart_shows_the_lowest_with_enough_deals_and_the_table_all() -> None:
    """x1 (0 % over one deal) is left out of the chart; the four 0 % owners of 6 deals lead."""
    section = _section()
    chart = _item(section, "hygiene-score")
    assert isinstance(chart, Chart)
    (series,) = chart.series
    assert len(series.x) == CHART_OWNERS and "x1" not in series.x
    assert series.x[:4] == ("o06", "o13", "o20", "o27") and series.y[:4] == (0.0,) * 4
    assert series.y[4] == round(100 / 6, 1)  # 5 of 6 flagged: o05, o12, ...
    assert "lowest scores among the 30 owners with at least 5 open deals" in chart.note
    assert "lists all 31 owners" in chart.note
    table = _item(section, "hygiene-by-owner")
    assert isinstance(table, Table) and len(table.rows) == OWNERS + 1
    assert table.rows[0][:4] == ("o06", 6, 0, 0.0)


def test_few_owners_are_all_charted_with_a_plain_note() -> None:
    """With fewer owners than the charts hold, nothing is left out and the note says none is."""
    end = [row("a:1", owner="u1", findings=1), row("a:2", owner="u2")]
    section = _section(end=end, findings=[Finding("w", "r", "a:1", "u1")])
    chart = _item(section, "hygiene-score")
    assert isinstance(chart, Chart) and chart.series[0].x == ("u1", "u2")
    assert "table below lists" not in chart.note
    owners = _item(section, "findings-by-owner")
    assert isinstance(owners, Chart) and "table" not in owners.note


def test_trend_draws_everyone_and_the_lowest_few_from_the_day_findings_are_known() -> None:
    """Weeks before the findings were known get no point; 8 owners' lines besides everyone's."""
    weeks = [UNTIL - timedelta(weeks=n) for n in (3, 2, 1, 0)]
    weekly = {d: week_figures(_end_rows(d), END) for d in weeks}
    chart = _item(_section(weekly=weekly, findings_known=weeks[2]), "hygiene-trend")
    assert isinstance(chart, Chart)
    everyone, *owners = chart.series
    assert everyone.name == "All owners"
    assert everyone.x == (weeks[2].isoformat(), UNTIL.isoformat())
    flagged = sum(i % 7 for i in range(OWNERS)) + 1
    assert everyone.y == (round(100 * (1 - flagged / 181), 1),) * 2
    assert len(owners) == TREND_OWNERS
    assert [s.name for s in owners[:4]] == ["o06", "o13", "o20", "o27"]
    assert all(len(s.x) == 2 for s in owners)
    assert f"known from {weeks[2].isoformat()}" in chart.note


def test_no_score_before_findings_are_known() -> None:
    """Until before the first known day: no score chart nor trend; the table says why."""
    weekly = {UNTIL: week_figures(_end_rows(), END)}
    later = UNTIL + timedelta(days=1)
    section = _section(weekly=weekly, findings_known=later)
    ids = {i.id for i in section.items}
    assert "hygiene-score" not in ids and "hygiene-trend" not in ids
    table = _item(section, "hygiene-by-owner")
    assert isinstance(table, Table) and all(r[3] is None for r in table.rows)
    assert f"known from {later.isoformat()}" in table.note
    never = _section(weekly=weekly, findings_known=None)
    assert "hygiene-trend" not in {i.id for i in never.items}
    assert "have not yet checked" in never.intro


def test_score_note_counts_owners_tied_at_the_bottom() -> None:
    """When more owners share the lowest score than the chart holds, the note says how many
    and the chart shows those with the most open deals."""
    end = [
        row(f"a:{i}-{k}", owner=f"o{i:02}", findings=1)
        for i in range(25)
        for k in range(MIN_DEALS + i % 3)  # 5, 6 or 7 deals, all flagged: 0 %
    ]
    chart = _item(_section(end=end, findings=[]), "hygiene-score")
    assert isinstance(chart, Chart)
    (series,) = chart.series
    assert series.y == (0.0,) * CHART_OWNERS
    sevens = [f"o{i:02}" for i in range(25) if i % 3 == 2]  # 8 owners with 7 deals lead
    assert list(series.x[:8]) == sevens
    assert "; 25 of them score 0 %, those with the most open deals are shown." in chart.note
