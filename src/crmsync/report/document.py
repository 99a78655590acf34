"""The report's shape, independent of how it is drawn: sections holding charts and tables.

Every number a chart draws is in its `series`, so the HTML, CSV and JSON forms all show the
same figures, and a test can count the bars or points a chart must draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

CHART_KINDS = ("bar", "grouped_bar", "stacked_bar", "line", "waterfall")
Cell = str | int | float | None


@dataclass(frozen=True)
class Series:
    """One trace: a value per category (x are labels or ISO dates, in drawing order)."""

    name: str
    x: tuple[str, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    """One chart. A waterfall has one series: its first and last values are totals, the rest
    signed steps; every other kind draws each series' points as bars or a line."""

    id: str  # stable and unique in the report: the DOM id and the CSV file's name
    title: str
    kind: str  # one of CHART_KINDS
    series: tuple[Series, ...]
    x_title: str = ""
    y_title: str = ""
    note: str = ""  # one or two sentences under the chart, for a sales manager


@dataclass(frozen=True)
class Table:
    """A sortable table: rows of cells under named columns."""

    id: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Section:
    """A heading with its charts and tables, in order."""

    id: str
    title: str
    intro: str = ""
    items: tuple[Chart | Table, ...] = ()


@dataclass(frozen=True)
class ReportDoc:
    """The whole report: what it covers, and its sections."""

    title: str
    generated_at: datetime
    since: date
    until: date
    scope: tuple[str, ...]  # plain lines: connections, filters, currencies ("per currency: ...")
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = field(default=())  # what was left out and why
