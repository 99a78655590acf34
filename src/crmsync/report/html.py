"""The report as one self-contained HTML page: plotly charts, sortable tables, numbers as CSV.

The page needs no network: plotly.js is embedded once, each chart's figure is JSON in the page
and drawn by Plotly.newPlot; when every chart has drawn, <body> gets `data-charts-drawn` (the
count), which a browser test waits for. A Content-Security-Policy in the page forbids loading
anything. All text is escaped: deal and owner names are CRM data, never trusted markup (plotly
reads a few tags and entities in its labels, so its labels are entity-escaped too).
"""

from __future__ import annotations

import functools
import json
import math
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

from crmsync.report.document import Cell, Chart, ReportDoc, Table
from crmsync.report.tabular import chart_csv, chart_rows, table_csv

__all__ = ["chart_figure", "render_html"]

TEMPLATE = "report.html.j2"
CHART_HEIGHT = 380  # pixels
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
# plotly's palette for the waterfall: rises, falls, and the start and end totals
RISE, FALL, TOTAL = "#2e7d32", "#c62828", "#546e7a"


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("crmsync.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.cache
def _plotly_js() -> Markup:
    """plotly.js, inlined once per page (`</script` inside it could end the element early)."""
    from plotly.offline import get_plotlyjs

    return Markup(get_plotlyjs().replace("</script", "<\\/script"))


def _label(text: str) -> str:
    """Text for a plotly label: its markup characters as entities, shown literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _script_json(value: Any) -> Markup:
    """JSON safe inside a <script> element: no `<`, `>` or `&` that HTML could read."""
    text = value if isinstance(value, str) else json.dumps(value, allow_nan=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def dom_id(kind: str, item_id: str) -> str:
    """The element id of a chart or table: its report id, kept to letters, digits, - and _."""
    return f"{kind}-{_SAFE_ID.sub('_', item_id)}"


def _axis_type(chart: Chart) -> str:
    """`date` when every category is an ISO day, else `category` (so an owner called "2024"
    is not read as a number)."""
    xs = [x for s in chart.series for x in s.x]
    return "date" if xs and all(_ISO_DAY.fullmatch(x) for x in xs) else "category"


def _number(value: float) -> str:
    """A value as a person reads it: thousands separated, cents only below 1,000, no "-0"."""
    value = float(value)  # an int too
    if math.isnan(value):
        return ""
    text = f"{value:,.0f}" if value.is_integer() or abs(value) >= 1000 else f"{value:,.2f}"
    return "0" if text.strip("-0.,") == "" else text


def _short(value: float) -> str:
    """A bar's label, short enough to sit above a narrow bar: 998k, 25.3M, 1.2B (exact on hover)."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    text = f"{value:.3g}"
    return _number(value) if "e" in text or float(text) == 0 else text


def _wrapped(label: str) -> str:
    """A short category label (a waterfall step: "Pushed out") on two lines, so nine of them
    fit under a half-width chart without turning; longer ones are left whole."""
    escaped = _label(label)
    return escaped.replace(" ", "<br>", 1) if len(label) <= 24 else escaped


def chart_figure(chart: Chart) -> go.Figure:
    """The plotly figure drawing `chart`: bars (single, grouped or stacked), lines with a
    marker per point, or a waterfall whose first and last bars are totals."""
    fig = go.Figure()
    hover = "%{x}<br>%{fullData.name}: %{y:,.2~f}<extra></extra>"
    if chart.kind == "waterfall":
        (s,) = chart.series
        measure = ["absolute", *(["relative"] * (len(s.y) - 2)), "total"][: len(s.y)]
        fig.add_trace(
            go.Waterfall(
                name=_label(s.name),
                x=[_wrapped(x) for x in s.x],
                y=list(s.y),
                measure=measure,
                text=[_short(y) for y in s.y],
                customdata=[_number(y) for y in s.y],
                textposition="outside",
                cliponaxis=False,
                increasing={"marker": {"color": RISE}},
                decreasing={"marker": {"color": FALL}},
                totals={"marker": {"color": TOTAL}},
                connector={"line": {"color": "#9e9e9e", "width": 1}},
                hovertemplate="%{x}: %{customdata}<extra></extra>",
            )
        )
    for s in chart.series if chart.kind != "waterfall" else ():
        common: dict[str, Any] = {
            "name": _label(s.name),
            "x": [_label(x) for x in s.x],
            "y": list(s.y),
            "hovertemplate": hover,
        }
        if chart.kind == "line":
            fig.add_trace(go.Scatter(mode="lines+markers", marker={"size": 7}, **common))
        else:
            fig.add_trace(go.Bar(**common))
    barmode = {"grouped_bar": "group", "stacked_bar": "stack"}.get(chart.kind)
    fig.update_layout(
        barmode=barmode,
        height=CHART_HEIGHT,
        margin={"l": 70, "r": 20, "t": 30, "b": 60},
        showlegend=len(chart.series) > 1,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "xanchor": "left"},
        xaxis={"title": {"text": _label(chart.x_title)}, "type": _axis_type(chart)},
        yaxis={
            "title": {"text": _label(chart.y_title)},
            "hoverformat": ",.2~f",
            "automargin": True,
            "rangemode": "tozero" if chart.kind != "line" else "normal",
        },
        separators=".,",
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13},
    )
    fig.update_xaxes(automargin=True)
    return fig


@dataclass(frozen=True)
class _CellView:
    text: str
    sort: float | None  # numbers sort as numbers; None: as text


def _cell_view(value: Cell) -> _CellView:
    if value is None:
        return _CellView("", None)
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return _CellView(_number(number), None if math.isnan(number) else number)
    return _CellView(str(value), None)


def _data_uri(text: str) -> str:
    return "data:text/csv;charset=utf-8," + urllib.parse.quote(text)


def _chart_view(chart: Chart) -> dict[str, Any]:
    header, rows = chart_rows(chart)
    return {
        "type": "chart",
        "dom_id": dom_id("chart", chart.id),
        "file": _SAFE_ID.sub("_", chart.id) + ".csv",
        "chart": chart,
        "points": sum(len(s.x) for s in chart.series),
        "csv": _data_uri(chart_csv(chart)),
        "header": header,
        "rows": [[_cell_view(c) for c in row] for row in rows],
    }


def _table_view(table: Table) -> dict[str, Any]:
    return {
        "type": "table",
        "dom_id": dom_id("table", table.id),
        "file": _SAFE_ID.sub("_", table.id) + ".csv",
        "table": table,
        "csv": _data_uri(table_csv(table)),
        "rows": [[_cell_view(c) for c in row] for row in table.rows],
    }


def render_html(doc: ReportDoc) -> str:
    """The report as one HTML page that opens offline in any browser."""
    sections = []
    figures = []
    for section in doc.sections:
        items = []
        for item in section.items:
            if isinstance(item, Table):
                items.append(_table_view(item))
                continue
            view = _chart_view(item)
            items.append(view)
            spec = json.loads(pio.to_json(chart_figure(item), validate=False))
            spec["layout"].pop("template", None)  # the page's one template, shared by all
            figures.append({"div": view["dom_id"], "data": spec["data"], "layout": spec["layout"]})
        sections.append(
            {"section": section, "dom_id": dom_id("section", section.id), "items": items}
        )
    template = pio.templates["plotly_white"].to_plotly_json()
    charts = _script_json(pio.to_json({"template": template, "charts": figures}, validate=False))
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            doc=doc,
            sections=sections,
            chart_count=len(figures),
            charts_json=charts,
            plotly_js=_plotly_js(),
        )
    )
