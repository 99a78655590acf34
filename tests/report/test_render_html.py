"""The HTML page without a browser: one offline file, the figures it hands plotly, escaping."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.parse
from dataclasses import replace

import pytest

from crmsync.report.document import Chart, Section, Series, Table
from crmsync.report.html import chart_figure, dom_id, horizontal, render_html, wide
from crmsync.report.tabular import chart_csv
from tests.report.dom import Node, parse
from tests.report.sample import FLOW_VALUES, HOSTILE, sample_doc


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(sample_doc())


@pytest.fixture(scope="module")
def tree(page: str) -> Node:
    return parse(page)


def _charts(tree: Node) -> dict[str, dict[str, object]]:
    (script,) = [n for n in tree.find("script") if n.attrs.get("id") == "report-charts"]
    spec = json.loads(script.all_text())
    return {c["div"]: c for c in spec["charts"]}


def _doc_charts() -> list[Chart]:
    return [i for s in sample_doc().sections for i in s.items if isinstance(i, Chart)]


def test_the_page_loads_nothing_from_the_network(page: str, tree: Node) -> None:
    """No element fetches anything, a CSP forbids it, and plotly.js is inlined exactly once."""
    assert not [n for n in tree.walk() if n.attrs.get("src") or n.tag in ("link", "iframe")]
    (csp,) = [
        m for m in tree.find("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert "default-src 'none'" in csp.attrs["content"]
    assert "connect-src" not in csp.attrs["content"]  # falls back to 'none'
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1
    assert "cdn.plot.ly" not in page.replace("https://cdn.plot.ly", "")  # not even a fallback tag


def test_each_chart_hands_plotly_its_series(tree: Node) -> None:
    """Every chart's traces carry its series' values in order, with the right mode."""
    figures = _charts(tree)
    charts = _doc_charts()
    assert len(figures) == len(charts) == 5
    assert tree.find("body")[0].attrs["data-charts"] == "5"
    for chart in charts:
        fig = figures[dom_id("chart", chart.id)]
        traces = fig["data"]
        assert isinstance(traces, list) and len(traces) == len(chart.series)
        for trace, s in zip(traces, chart.series, strict=True):
            lying = trace.get("orientation") == "h"
            assert trace["x" if lying else "y"] == list(s.y)
            assert len(trace["y" if lying else "x"]) == len(s.x)
            want = {"bar": "bar", "grouped_bar": "bar", "stacked_bar": "bar"}.get(chart.kind)
            assert trace["type"] == (
                want or {"line": "scatter", "waterfall": "waterfall"}[chart.kind]
            )
        layout = fig["layout"]
        assert isinstance(layout, dict) and "template" not in layout  # one template per page
        assert layout.get("barmode") == {"grouped_bar": "group", "stacked_bar": "stack"}.get(
            chart.kind
        )


def test_the_waterfall_starts_and_ends_with_totals() -> None:
    """The first bar is absolute, the last a total, every step between relative."""
    (flow,) = [c for c in _doc_charts() if c.kind == "waterfall"]
    (trace,) = chart_figure(flow).data
    assert list(trace.measure) == ["absolute", *["relative"] * (len(FLOW_VALUES) - 1), "total"]
    assert trace.y[-1] == pytest.approx(sum(FLOW_VALUES))


def test_lines_draw_a_marker_per_point_and_dates_are_a_date_axis() -> None:
    """A line chart is lines and markers; ISO days make a date axis, other labels categories."""
    charts = {c.id: c for c in _doc_charts()}
    trend = chart_figure(charts["hygiene-trend"])
    assert {t.mode for t in trend.data} == {"lines+markers"}
    assert trend.layout.xaxis.type == "date"
    owners = chart_figure(charts["findings-by-owner"])  # lying down: a long name
    assert owners.layout.yaxis.type == "category"  # "2024" is a name, not a number
    assert owners.layout.xaxis.title.text == "Open findings"


def test_hostile_text_stays_text(page: str, tree: Node) -> None:
    """A deal or owner name full of markup is shown as written and never becomes markup."""
    assert HOSTILE not in page  # never written raw, anywhere
    assert not tree.find("img") and not tree.find("b")
    scripts = tree.find("script")
    assert len(scripts) == 3  # the charts' JSON, plotly.js, the page's script: nothing injected
    (scope,) = tree.find("ul", "scope")
    assert f"Owner: {HOSTILE}" in [li.all_text() for li in scope.find("li")]
    slipped = tree.by_id(dom_id("table", "slipped"))
    assert slipped.find("td")[0].all_text() == HOSTILE
    names = _charts(tree)[dom_id("chart", "hygiene-trend")]["data"]
    assert isinstance(names, list)
    shown = names[1]["name"]  # plotly reads tags and entities in labels: given as entities
    assert (
        "<" not in shown
        and shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == HOSTILE
    )


def test_each_chart_offers_its_numbers_as_csv(tree: Node) -> None:
    """Under each chart: a CSV download (data: URI) and a table with the same numbers."""
    for chart in _doc_charts():
        (figure,) = [f for f in tree.find("figure") if f.find(cls="plot")[0].attrs["id"]
                     == dom_id("chart", chart.id)]  # fmt: skip
        (link,) = figure.find("a", "download")
        prefix = "data:text/csv;charset=utf-8,"
        assert link.attrs["href"].startswith(prefix)
        assert link.attrs["download"] == f"{chart.id}.csv"
        text = urllib.parse.unquote(link.attrs["href"][len(prefix) :])
        assert text == chart_csv(chart)
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) - 1 == len({x for s in chart.series for x in s.x})
        cells = [td.attrs.get("data-sort") for td in figure.find("td")]
        numbers = sorted(float(c) for c in cells if c is not None)
        assert numbers == sorted(y for s in chart.series for y in s.y)


def test_tables_are_sortable_with_numbers_marked(tree: Node) -> None:
    """A table's headings are buttons; its numeric cells carry their value to sort by."""
    table = tree.by_id(dom_id("table", "slipped"))
    (html_table,) = table.find("table", "sortable")
    headings = [th.all_text() for th in html_table.find("th")]
    assert headings == ["Deal", "Owner", "Amount", "Times pushed", "Close date"]
    assert all(th.find("button") for th in html_table.find("th"))
    right = ["num" in th.classes for th in html_table.find("th")]
    assert right == [False, False, True, True, False]  # numbers' headings over the numbers
    amounts = [r.find("td")[2].attrs["data-sort"] for r in html_table.find("tbody")[0].find("tr")]
    assert [float(a) for a in amounts] == [120000.0, 9500.25, 45000.0, -1000.0]
    empty = tree.by_id(dom_id("table", "none-here"))
    assert empty.find("p", "empty") and not empty.find("table")


def test_notes_and_scope_come_first_and_each_note_sits_under_its_chart(tree: Node) -> None:
    """The scope lines and the report's notes are in the header; a chart's note follows it."""
    (header,) = tree.find("header")
    assert [li.all_text() for li in header.find("ul", "notes")[0].find("li")] == [
        "Coverage is left out: no quota file was given."
    ]
    for chart in _doc_charts():
        figure = next(f for f in tree.find("figure") if f.find(cls="plot")[0].attrs["id"]
                      == dom_id("chart", chart.id))  # fmt: skip
        notes = figure.find("figcaption")
        assert [n.all_text() for n in notes] == ([chart.note] if chart.note else [])


def test_odd_ids_make_safe_element_ids() -> None:
    """A chart id with spaces or quotes still makes a valid, unique element id."""
    doc = sample_doc()
    odd = Chart(id='a "b" <c>', title="t", kind="bar", series=(Series("s", ("x",), (1.0,)),))
    doc = replace(
        doc, sections=(replace(doc.sections[0], items=(odd, Table("t", "T", ("a",), ((1,),)))),)
    )
    tree = parse(render_html(doc))
    assert tree.by_id("chart-a__b___c_").attrs["class"] == "plot"
    assert tree.find("body")[0].attrs["data-charts"] == "1"


def test_an_empty_report_still_renders() -> None:
    """No sections: the page says its period and draws nothing (0 charts to wait for)."""
    doc = replace(sample_doc(), sections=(), notes=())
    tree = parse(render_html(doc))
    assert tree.find("body")[0].attrs["data-charts"] == "0"
    assert "2026-07-10 to 2026-10-09" in tree.find("p", "period")[0].all_text()


def test_bars_lie_down_when_names_are_long_or_many() -> None:
    """Few short stages stand up; long names or many categories lie down (and span the page),
    first on top, a row of height each."""
    charts = {c.id: c for c in _doc_charts()}
    assert not horizontal(charts["pipeline-by-stage"]) and not horizontal(charts["flow"])
    assert horizontal(charts["findings-by-owner"])
    owners = tuple(f"Owner {n}" for n in range(30))
    many = Chart("many", "Many", "bar", (Series("Findings", owners, tuple(map(float, range(30)))),))
    assert horizontal(many) and not horizontal(replace(many, series=(many.series[0],), kind="line"))
    fig = chart_figure(many)
    assert fig.data[0].orientation == "h" and fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.height >= 30 * 22 and fig.layout.xaxis.side != "top"
    weeks = Series(
        "Deals", ("2026-01-05",) * 1 + tuple(f"2026-02-{d:02d}" for d in range(1, 20)), (1.0,) * 20
    )
    assert not horizontal(Chart("w", "W", "bar", (weeks,)))  # dates stay along the bottom
    page = parse(render_html(replace(sample_doc(), sections=(Section("s", "S", items=(many,)),))))
    (card,) = page.find("figure")
    assert "wide" in card.classes


def test_many_lines_put_their_legend_beside_the_chart() -> None:
    """A line per owner for 20 owners: the names in a column at the side, the chart a row."""
    weeks = ("2026-09-07", "2026-09-14")
    lines = tuple(Series(f"Owner {n}", weeks, (0.5, 0.6)) for n in range(20))
    chart = Chart("trend", "Trend", "line", lines)
    fig = chart_figure(chart)
    assert fig.layout.legend.orientation == "v" and fig.layout.legend.x > 1
    assert fig.layout.height >= 20 * 21 and wide(chart)
    few = chart_figure(replace(chart, series=lines[:2]))
    assert few.layout.legend.orientation == "h" and not wide(replace(chart, series=lines[:2]))


def test_hundreds_of_owners_scroll_inside_their_card() -> None:
    """600 owners: every bar drawn, the chart scrolls in a box with its scale on top; 600
    lines keep a chart of normal height whose legend scrolls."""
    owners = tuple(f"Owner {n}" for n in range(600))
    bars = Chart("o", "O", "bar", (Series("Findings", owners, (1.0,) * 600),))
    weeks = ("2026-09-07", "2026-09-14")
    lines = Chart("l", "L", "line", tuple(Series(o, weeks, (1.0, 2.0)) for o in owners))
    assert chart_figure(bars).layout.xaxis.side == "top"
    assert chart_figure(lines).layout.height <= 640
    doc = replace(sample_doc(), sections=(Section("s", "S", items=(bars, lines)),))
    tree = parse(render_html(doc))
    boxes = tree.find("div", "scrollbox")
    assert [b.find("div", "plot")[0].attrs["id"] for b in boxes] == ["chart-o"]


def test_an_empty_chart_says_so() -> None:
    """A chart with no values draws no axes but a line saying there is nothing to show."""
    empty = Chart("e", "E", "line", (Series("s", (), ()),))
    fig = chart_figure(empty)
    assert [a.text for a in fig.layout.annotations] == ["Nothing to show for this period"]
    assert fig.layout.xaxis.visible is False
    assert not chart_figure(_doc_charts()[0]).layout.annotations


def test_many_bar_series_lying_down_keep_a_row_per_category() -> None:
    """Grouped bars for 40 owners and 7 series: as tall as their rows, not capped."""
    owners = tuple(f"Owner {n}" for n in range(40))
    series = tuple(Series(f"Rule {k}", owners, (1.0,) * 40) for k in range(7))
    fig = chart_figure(Chart("g", "G", "grouped_bar", series))
    assert fig.layout.height >= 40 * 7 * 22 and fig.layout.legend.orientation == "v"


def test_lying_bars_say_their_value_and_one_day_keeps_a_day_axis() -> None:
    """A single series of bars lying down labels each bar (a 0 reads "0") on a 0-100 scale
    when it is a share; a line of one day
    shows a week either side of it with that day as its only tick."""
    names = ("A long owner name " * 3, "Bob")
    bars = Chart("b", "Owners", "bar", (Series("Score", names, (0.0, 12.5)),), "x", "Score (%)")
    figure = chart_figure(bars)
    (trace,) = figure.data
    assert trace.orientation == "h" and list(trace.text) == ["0", "12.50"]
    assert list(figure.layout.xaxis.range) == [0, 100]  # a share on its whole scale
    line = Chart("l", "Trend", "line", (Series("All", ("2026-12-02",), (14.0,)),), "x", "y")
    axis = chart_figure(line).layout.xaxis
    assert axis.type == "date" and list(axis.tickvals) == ["2026-12-02"]
    assert list(axis.range) == ["2026-11-25", "2026-12-09"]
    assert axis.tickformat == "%b %-d"


def test_dates_in_tables_stay_on_one_line() -> None:
    """A date cell is marked to keep on one line; a name or a number is not."""
    table = Table("t", "Deals", ("Deal", "Close date", "Amount"), (("Acme", "2026-09-19", 5),))
    doc = replace(sample_doc(), sections=(Section("s", "S", "", (table,)),))
    (tr,) = parse(render_html(doc)).by_id(dom_id("table", "t")).find("tbody")[0].find("tr")
    assert [td.attrs.get("class") for td in tr.find("td")] == [None, "day", "num"]
