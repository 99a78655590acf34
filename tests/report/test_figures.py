"""The document the figures make: every section, unique ids, titled and explained charts, the
numbers the pure functions give, and a plain report when there is no data yet."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from crmsync.report import flow
from crmsync.report.coverage import Coverage, Quota
from crmsync.report.document import Chart, ReportDoc, Table
from crmsync.report.figures import assemble
from crmsync.report.hygiene import Finding
from crmsync.report.inputs import Deal, Inputs
from crmsync.report.weeks import week_figures
from tests.report.rows import row

SINCE, UNTIL, END = date(2026, 8, 21), date(2026, 11, 20), date(2026, 12, 31)
IN, OUT = date(2026, 12, 10), date(2027, 2, 1)


def _inputs(**changes: object) -> Inputs:
    start = [row("a:1", "100", IN, day=SINCE), row("a:2", "50", IN, day=SINCE, owner="u2")]
    end = [
        row("a:1", "120", OUT, findings=1),
        row("a:3", "80", IN, stage="qualified", currency="EUR"),
    ]
    values: dict[str, object] = dict(
        since=SINCE,
        until=UNTIL,
        window_end=END,
        generated_at=datetime(2026, 11, 20, 12, tzinfo=UTC),
        scope=("Connections: a", "Amounts per currency: EUR, USD"),
        start=start,
        end=end,
        weekly={SINCE: week_figures(start, END), UNTIL: week_figures(end, END)},
        fate={"a:2": flow.WON},
        deals={"a:1": Deal("Acme renewal", "a")},
        owner_names={"u1": "Ann Lee"},
        pushes={"a:1": 4},
        stays=[("proposal", 3.0), ("proposal", 5.0), ("qualified", 2.0)],
        paths=[("qualified", "proposal"), ("qualified", "closed_lost")],
        in_stage=[("proposal", 4.0), ("qualified", 1.0)],
        findings=[Finding("hygiene", "no_next_step", "a:1", "u1")],
    )
    values.update(changes)
    return Inputs(**values)  # type: ignore[arg-type]


def _items(doc: ReportDoc) -> list[Chart | Table]:
    return [item for s in doc.sections for item in s.items]


def test_every_section_with_titled_items_and_unique_ids() -> None:
    """Every item has a unique id, a title and a note; every chart its axis titles."""
    doc = assemble(_inputs())
    assert [s.id for s in doc.sections] == ["pipeline", "movement", "slipped", "aging", "hygiene"]
    items = _items(doc)
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids))
    for item in items:
        assert item.title and item.note
        if isinstance(item, Chart):
            assert item.x_title and item.y_title and item.series
            assert all(len(s.x) == len(s.y) for s in item.series)
    assert any("no quota file" in n for n in doc.notes)


def test_the_waterfall_chart_draws_the_flow() -> None:
    """Start, signed steps, end: the steps add up from start to end."""
    doc = assemble(_inputs())
    chart = next(i for i in _items(doc) if i.id == "movement-waterfall-usd")
    assert isinstance(chart, Chart)
    (series,) = chart.series
    assert series.x[0] == "Start" and series.x[-1] == "End"
    assert series.y[0] == 150.0  # a:1 and a:2 were in the window
    assert dict(zip(series.x, series.y, strict=True))["Pushed out"] == -100.0
    assert dict(zip(series.x, series.y, strict=True))["Won"] == -50.0
    assert series.y[-1] == 0.0
    assert sum(series.y[:-1]) == series.y[-1]


def test_tables_show_names_and_pushes() -> None:
    """The slipped table names the deal and its owner and counts its pushes."""
    doc = assemble(_inputs())
    slipped = next(i for i in _items(doc) if i.id == "slipped-deals")
    assert isinstance(slipped, Table)
    assert slipped.rows == (
        ("Acme renewal", "Ann Lee", "proposal", 120.0, "USD", IN.isoformat(), OUT.isoformat(), 4),
    )
    pipeline = next(i for i in _items(doc) if i.id == "pipeline-by-stage-table")
    assert isinstance(pipeline, Table)
    assert ("USD", "Proposal", 1, 120.0, 60.0) in pipeline.rows
    assert ("EUR", "Qualified", 1, 80.0, 40.0) in pipeline.rows


def test_coverage_section_when_quotas_are_given() -> None:
    """A coverage section with a bar per quota line."""
    quota = Quota(2, "u1", date(2026, 10, 1), date(2026, 12, 31), Decimal(400), "USD")
    doc = assemble(_inputs(coverage=[Coverage(quota, Decimal(1000), 2)]))
    assert doc.sections[-1].id == "coverage"
    chart = next(i for i in _items(doc) if i.id == "coverage")
    assert isinstance(chart, Chart) and chart.series[0].y == (2.5,)
    assert not any("quota" in n for n in doc.notes)


def test_no_data_yet_says_so() -> None:
    """Without snapshots, history or findings the report still builds and says why it is empty."""
    doc = assemble(
        _inputs(
            start=[],
            end=[],
            weekly={},
            fate={},
            stays=[],
            paths=[],
            in_stage=[],
            findings=[],
            has_snapshots=False,
        )
    )
    assert "No daily snapshots" in doc.notes[0]
    pipeline = doc.sections[0]
    assert pipeline.items == () and "No daily snapshots" in pipeline.intro
    assert all(not isinstance(i, Chart) or i.series for i in _items(doc))


def test_week_figures_by_hand() -> None:
    """A week's total counts only deals closing by the window's end; scores count every deal."""
    rows = [
        row("a:1", "10", IN, findings=1),
        row("a:2", "5", OUT),
        row("a:3", "7", IN, currency="EUR", owner="u2"),
    ]
    week = week_figures(rows, END)
    assert week.totals == {"USD": Decimal(10), "EUR": Decimal(7)}
    assert [(s.owner_id, s.deals, s.clean) for s in week.scores] == [("u1", 2, 1), ("u2", 1, 1)]
    assert week.overall == 2 / 3


def test_same_quota_twice_gets_distinct_bars() -> None:
    """Two quota lines for the same owner and period draw two bars, told apart by line."""
    quota = Quota(2, "u1", date(2026, 10, 1), date(2026, 12, 31), Decimal(400), "USD")
    again = Quota(3, "u1", date(2026, 10, 1), date(2026, 12, 31), Decimal(800), "USD")
    doc = assemble(
        _inputs(coverage=[Coverage(quota, Decimal(400), 1), Coverage(again, Decimal(400), 1)])
    )
    chart = next(i for i in _items(doc) if i.id == "coverage")
    assert isinstance(chart, Chart)
    assert len(set(chart.series[0].x)) == 2 and chart.series[0].y == (1.0, 0.5)


def test_a_filtered_report_says_how_hand_overs_count() -> None:
    """With a filter, the movement table says where hand-overs land; without, it does not."""
    for filtered in (False, True):
        doc = assemble(_inputs(filtered=filtered))
        table = next(i for i in _items(doc) if i.id == "movement-table")
        assert ("handed over" in table.note) is filtered


def test_hygiene_lowest_score_first() -> None:
    """The hygiene table lists the owner with the lowest score first."""
    end = [
        row("a:1", owner="u1", findings=0),
        row("a:2", owner="u2", findings=1),
        row("a:3", owner="u2", findings=0),
    ]
    doc = assemble(_inputs(end=end))
    table = next(i for i in _items(doc) if i.id == "hygiene-by-owner")
    assert isinstance(table, Table)
    assert [r[0] for r in table.rows] == ["u2", "Ann Lee"]
    assert [r[3] for r in table.rows] == [50.0, 100.0]


def test_pipeline_trend_one_chart_per_currency() -> None:
    """Each currency's weekly total has its own chart: USD 150 then 0 (a:1 pushed past the
    window, a:2 won), EUR 0 then 80 (a:3 new)."""
    doc = assemble(_inputs())
    trends = {i.id: i for i in _items(doc) if i.id.startswith("pipeline-trend")}
    assert set(trends) == {"pipeline-trend-eur", "pipeline-trend-usd"}
    x = (SINCE.isoformat(), UNTIL.isoformat())
    for id, currency, y in (("eur", "EUR", (0.0, 80.0)), ("usd", "USD", (150.0, 0.0))):
        chart = trends[f"pipeline-trend-{id}"]
        assert isinstance(chart, Chart) and chart.y_title == f"Amount ({currency})"
        (series,) = chart.series
        assert (series.x, series.y) == (x, y) and currency in chart.title


def test_every_note_and_scope_line_starts_with_a_capital() -> None:
    """Scope lines, notes, intros and every item's note start with a capital letter."""
    doc = assemble(_inputs(coverage=[]))
    texts = [*doc.scope, *doc.notes]
    for section in doc.sections:
        texts.append(section.intro)
        texts.extend(i.note for i in section.items)
    for text in texts:
        assert text[:1].isupper(), text
