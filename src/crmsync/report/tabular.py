"""The report as numbers without drawing: CSV (the whole report, or one chart or table) and JSON.

The whole report's CSV is one long table, `section,item,series,x,value`, so a spreadsheet's
pivot or any data tool reads every chart and table from one file without knowing their shapes:
a chart gives one line per point (series, category, value), a table one line per cell (its
row number as the series, its column as x). A chart's or table's own CSV, offered beside it in
the HTML page, is wide instead: as the page shows it. Text cells that a spreadsheet would run as
a formula (`=`, `+`, `-`, `@` first) get a leading apostrophe: deal and owner names are CRM data.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from crmsync.report.document import Cell, Chart, ReportDoc, Table

__all__ = [
    "LONG_COLUMNS",
    "chart_csv",
    "chart_rows",
    "number_text",
    "report_csv",
    "report_json",
    "safe_text",
    "table_csv",
]

LONG_COLUMNS = ("section", "item", "series", "x", "value")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """A text cell a spreadsheet shows as text: one that would start a formula is quoted."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def number_text(value: float) -> str:
    """A number as CSV holds it: whole numbers without `.0`, others exactly (shortest form);
    a missing value (NaN) is an empty cell."""
    if math.isnan(value):
        return ""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # a bool is an int to Python; say it in words
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return number_text(float(value))
    return safe_text(value)


def _write(rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, what spreadsheets expect
    writer.writerows(rows)
    return out.getvalue()


def chart_rows(chart: Chart) -> tuple[tuple[str, ...], list[tuple[Cell, ...]]]:
    """A chart's numbers as a wide table: the categories down, one column per series (empty
    where a series has no value for a category); categories in the order they are drawn."""
    categories: dict[str, None] = {}
    for s in chart.series:
        categories.update(dict.fromkeys(s.x))
    values = [dict(zip(s.x, s.y, strict=True)) for s in chart.series]
    header = (
        chart.x_title or "Category",
        *(s.name or chart.y_title or "Value" for s in chart.series),
    )
    rows: list[tuple[Cell, ...]] = [(x, *(v.get(x) for v in values)) for x in categories]
    return header, rows


def chart_csv(chart: Chart) -> str:
    """One chart's numbers as CSV, as its table under the chart shows them."""
    header, rows = chart_rows(chart)
    return _write([[safe_text(h) for h in header], *([_cell(c) for c in row] for row in rows)])


def table_csv(table: Table) -> str:
    """One table as CSV: its columns, then its rows."""
    return _write(
        [[safe_text(c) for c in table.columns], *([_cell(c) for c in row] for row in table.rows)]
    )


def report_csv(doc: ReportDoc) -> str:
    """The whole report as one long CSV: every chart's points, then every table's cells."""
    lines: list[Sequence[str]] = [LONG_COLUMNS]
    tables: list[tuple[str, Table]] = []
    for section in doc.sections:
        for item in section.items:
            if isinstance(item, Table):
                tables.append((section.id, item))
                continue
            for s in item.series:
                for x, y in zip(s.x, s.y, strict=True):
                    lines.append((section.id, item.id, safe_text(s.name), safe_text(x), _cell(y)))
    for section_id, table in tables:
        for n, row in enumerate(table.rows, start=1):
            for column, value in zip(table.columns, row, strict=True):
                lines.append((section_id, table.id, str(n), safe_text(column), _cell(value)))
    return _write(lines)


def _plain(value: Any) -> Any:
    """Values as JSON holds them: dates ISO 8601, NaN as null, a Chart or Table tagged."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def report_json(doc: ReportDoc) -> str:
    """The report document as JSON: its fields as they are, each item with `type` (chart or
    table), dates and times ISO 8601."""
    body = _plain(asdict(doc))
    for section, raw in zip(body["sections"], doc.sections, strict=True):
        for item, item_raw in zip(section["items"], raw.items, strict=True):
            item["type"] = "table" if isinstance(item_raw, Table) else "chart"
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=1) + "\n"
