"""The page in headless Chromium: every chart draws its bars and points, hostile names stay
text even inside plotly's SVG, and a click on a heading sorts a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.report.document import Chart
from crmsync.report.html import dom_id, render_html
from tests.report.dom import Node, drawn_points, rendered
from tests.report.sample import HOSTILE, points, sample_doc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Node:
    """The sample page after Chromium ran it, with a click on the slipped deals' Amount."""
    page = tmp_path_factory.mktemp("browser") / "report.html"
    click = (
        "<script>window.addEventListener('load', function () {"
        "document.querySelector('#table-slipped th:nth-child(3) button').click();});</script>"
    )
    page.write_text(render_html(sample_doc()).replace("</body>", click + "</body>"))
    return rendered(page)


def test_every_chart_draws_its_bars_and_points(drawn: Node) -> None:
    """The page says all charts drew, and each drew one bar or marker per value."""
    charts = [i for s in sample_doc().sections for i in s.items if isinstance(i, Chart)]
    (body,) = drawn.find("body")
    assert body.attrs.get("data-charts-drawn") == str(len(charts)), body.attrs
    for chart in charts:
        element = drawn.by_id(dom_id("chart", chart.id))
        assert drawn_points(element, chart.kind) == points(chart), chart.id


def test_hostile_names_are_text_in_the_charts(drawn: Node) -> None:
    """An owner named like markup is a tick label and a legend entry as written, not markup."""
    owners = drawn.by_id(dom_id("chart", "findings-by-owner"))
    ticks = [t.all_text() for t in owners.find("g") if t.classes & {"xtick", "ytick"}]
    assert HOSTILE in ticks
    trend = drawn.by_id(dom_id("chart", "hygiene-trend"))
    assert HOSTILE in [t.all_text() for t in trend.find("text", "legendtext")]
    assert not drawn.find("img") and not drawn.find("b")
    bold = [t for t in drawn.find("tspan") if "bold" in t.attrs.get("style", "")]
    assert not bold


def test_a_click_on_a_heading_sorts_the_table(drawn: Node) -> None:
    """After a click on Amount the rows are in ascending amount, the heading says so."""
    table = drawn.by_id(dom_id("table", "slipped"))
    rows = table.find("tbody")[0].find("tr")
    assert [float(r.find("td")[2].attrs["data-sort"]) for r in rows] == [
        -1000.0,
        9500.25,
        45000.0,
        120000.0,
    ]
    assert table.find("th")[2].attrs["aria-sort"] == "ascending"


def test_the_sort_test_sees_an_unsorted_table(tmp_path: Path) -> None:
    """Without the click the rows keep the document's order (the sort test can fail)."""
    page = tmp_path / "plain.html"
    page.write_text(render_html(sample_doc()))
    table = rendered(page).by_id(dom_id("table", "slipped"))
    amounts = [r.find("td")[2].all_text() for r in table.find("tbody")[0].find("tr")]
    assert amounts == ["120,000", "9,500", "45,000", "-1,000"]  # whole units from 1,000 up
