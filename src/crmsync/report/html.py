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
from datetime import date, timedelta
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

from crmsync.report.document import Cell, Chart, ReportDoc, Series, Table
from crmsync.report.tabular import chart_csv, chart_rows, table_csv

__all__ = ["chart_figure", "dom_id", "horizontal", "render_html", "wide"]

TEMPLATE = "report.html.j2"
CHART_HEIGHT = 380  # pixels
HORIZONTAL_OVER = 8  # bar charts with more categories than this lie down...
LONG_LABEL = 14  # ...and so do those with a longer category name
MANY_SERIES = 5  # more lines than this: the legend goes to the side, the chart spans the page
LEGEND_HEIGHT = 640  # a chart no taller for its legend: plotly scrolls a longer legend
TALL = 1000  # a chart taller than this (hundreds of owners) scrolls inside its card
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


def _categories(chart: Chart) -> list[str]:
    seen: dict[str, None] = {}
    for s in chart.series:
        seen.update(dict.fromkeys(s.x))
    return list(seen)


def horizontal(chart: Chart) -> bool:
    """Whether bars lie down: many categories or long names (rules, owners) read across, not
    turned on their side under a squeezed chart. Dates and waterfalls stay upright."""
    if chart.kind not in ("bar", "grouped_bar", "stacked_bar") or _axis_type(chart) == "date":
        return False
    labels = _categories(chart)
    return len(labels) > HORIZONTAL_OVER or max(map(len, labels), default=0) > LONG_LABEL


def wide(chart: Chart) -> bool:
    """Whether the chart takes a whole row of the page: bars lying down, or many lines."""
    return horizontal(chart) or len(chart.series) > MANY_SERIES


def _waterfall(chart: Chart) -> go.Waterfall:
    (s,) = chart.series
    return go.Waterfall(
        name=_label(s.name),
        x=[_wrapped(x) for x in s.x],
        y=list(s.y),
        measure=["absolute", *(["relative"] * (len(s.y) - 2)), "total"][: len(s.y)],
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


def _series_trace(chart: Chart, s: Series, lying: bool) -> go.Scatter | go.Bar:
    """One series: a line with a marker per point, or bars (lying down: the values along x,
    and a lone series' bars say their value, so a 0 is read, not guessed)."""
    labels, values = [_label(x) for x in s.x], list(s.y)
    if chart.kind == "line":
        return go.Scatter(
            name=_label(s.name),
            x=labels,
            y=values,
            mode="lines+markers",
            marker={"size": 7},
            hovertemplate=_hover("x", "y"),
        )
    if not lying:
        return go.Bar(name=_label(s.name), x=labels, y=values, hovertemplate=_hover("x", "y"))
    return go.Bar(
        name=_label(s.name),
        x=values,
        y=labels,
        orientation="h",
        text=[_number(v) for v in values] if len(chart.series) == 1 else None,
        textposition="outside",
        cliponaxis=False,
        hovertemplate=_hover("y", "x"),
    )


def _hover(category: str, value: str) -> str:
    """A series' hover text: its category, its name, and its value (on those plotly axes)."""
    return f"%{{{category}}}<br>%{{fullData.name}}: %{{{value}:,.2~f}}<extra></extra>"


def chart_figure(chart: Chart) -> go.Figure:
    """The plotly figure drawing `chart`: bars (single, grouped or stacked; lying down when
    their names are long or many), lines with a marker per point, or a waterfall whose first
    and last bars are totals."""
    fig = go.Figure()
    lying = horizontal(chart)
    category: dict[str, Any] = {"title": {"text": _label(chart.x_title)}, "type": _axis_type(chart)}
    value: dict[str, Any] = {
        "title": {"text": _label(chart.y_title)},
        "hoverformat": ",.2~f",
        "rangemode": "tozero" if chart.kind != "line" else "normal",
    }
    if chart.kind != "line" and chart.y_title.endswith("(%)"):
        value["range"] = [0, 100]  # a share's bars on its whole scale: 0 % is seen as nothing
    height = CHART_HEIGHT
    if chart.kind == "waterfall":
        fig.add_trace(_waterfall(chart))
    for s in chart.series if chart.kind != "waterfall" else ():
        fig.add_trace(_series_trace(chart, s, lying))
    if category["type"] == "date":  # days, not times of day
        category["tickformat"] = "%b %-d"  # the year is in the period above
        days = sorted(_categories(chart))
        if len(days) == 1:  # one point: a week either side, and no ticks between days
            one = date.fromisoformat(days[0])
            category["range"] = [
                (one - timedelta(days=7)).isoformat(),
                (one + timedelta(days=7)).isoformat(),
            ]
            category["tickvals"] = days
    if lying:  # first category on top, every one a readable row
        category["autorange"] = "reversed"
        per_row = 22 * (len(chart.series) if chart.kind == "grouped_bar" else 1) + 6
        height = max(CHART_HEIGHT, 120 + per_row * len(_categories(chart)))
        if height > TALL:  # it scrolls in its card: the scale where reading starts
            value["side"] = "top"
    legend = {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "xanchor": "left"}
    if len(chart.series) > MANY_SERIES:  # a column beside the chart, not rows over it
        legend = {"orientation": "v", "y": 1, "yanchor": "top", "x": 1.02, "xanchor": "left"}
        if not lying:  # lying bars keep a row each; lines keep a sane height, the legend scrolls
            height = min(max(height, 100 + 21 * len(chart.series)), LEGEND_HEIGHT)
    fig.update_layout(
        barmode={"grouped_bar": "group", "stacked_bar": "stack"}.get(chart.kind),
        height=height,
        margin={"l": 70, "r": 20, "t": 30, "b": 60},
        showlegend=len(chart.series) > 1,
        legend=legend,
        xaxis=value if lying else category,
        yaxis=category if lying else value,
        separators=".,",
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13},
    )
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    if not any(s.y for s in chart.series):  # say so, rather than bare axes
        fig.update_layout(
            annotations=[
                {"text": "Nothing to show for this period", "showarrow": False,
                 "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "font": {"size": 16}}
            ],
            xaxis={"visible": False},
            yaxis={"visible": False},
        )  # fmt: skip
    return fig


@dataclass(frozen=True)
class _CellView:
    text: str
    sort: float | None  # numbers sort as numbers; None: as text

    @property
    def day(self) -> bool:
        """Whether the cell is a date (kept on one line: 2026-09-19 never breaks at a dash)."""
        return bool(_ISO_DAY.fullmatch(self.text))


def _cell_view(value: Cell) -> _CellView:
    if value is None:
        return _CellView("", None)
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return _CellView(_number(number), None if math.isnan(number) else number)
    return _CellView(str(value), None)


def _data_uri(text: str) -> str:
    return "data:text/csv;charset=utf-8," + urllib.parse.quote(text)


def _chart_view(chart: Chart, fig: go.Figure) -> dict[str, Any]:
    header, rows = chart_rows(chart)
    return {
        "type": "chart",
        "dom_id": dom_id("chart", chart.id),
        "file": _SAFE_ID.sub("_", chart.id) + ".csv",
        "chart": chart,
        "points": sum(len(s.x) for s in chart.series),
        "wide": wide(chart),
        "tall": fig.layout.height > TALL,
        "csv": _data_uri(chart_csv(chart)),
        "header": header,
        "rows": [[_cell_view(c) for c in row] for row in rows],
    }


def _numeric(table: Table, column: int) -> bool:
    """Whether a column holds numbers (its heading then sits right, over them)."""
    cells = [row[column] for row in table.rows if row[column] is not None]
    return bool(cells) and all(
        isinstance(c, int | float) and not isinstance(c, bool) for c in cells
    )


def _table_view(table: Table) -> dict[str, Any]:
    return {
        "type": "table",
        "dom_id": dom_id("table", table.id),
        "file": _SAFE_ID.sub("_", table.id) + ".csv",
        "table": table,
        "numeric": [_numeric(table, n) for n in range(len(table.columns))],
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
            fig = chart_figure(item)
            view = _chart_view(item, fig)
            items.append(view)
            spec = json.loads(pio.to_json(fig, validate=False))
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
