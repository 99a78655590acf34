"""The report's CSV and JSON forms: every number of the document, read back."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import replace
from datetime import date

import pytest

from crmsync.report.document import Chart, Series, Table
from crmsync.report.tabular import (
    LONG_COLUMNS,
    chart_csv,
    number_text,
    report_csv,
    report_json,
    safe_text,
    table_csv,
)
from tests.report.sample import FORMULA, HOSTILE, sample_doc


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _unquote(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def test_the_long_csv_holds_every_point_then_every_cell() -> None:
    """One header; a line per chart point (series, x, value); then a line per table cell."""
    doc = sample_doc()
    text = report_csv(doc)
    assert text.splitlines()[0] == ",".join(LONG_COLUMNS)
    rows = _rows(text)
    want: list[tuple[str, str, str, str, float | str | None]] = []
    tables = []
    for section in doc.sections:
        for item in section.items:
            if isinstance(item, Table):
                tables.append((section.id, item))
                continue
            for s in item.series:
                want += [(section.id, item.id, s.name, x, y) for x, y in zip(s.x, s.y, strict=True)]
    for section_id, table in tables:
        for n, row in enumerate(table.rows, start=1):
            cells = zip(table.columns, row, strict=True)
            want += [(section_id, table.id, str(n), c, v) for c, v in cells]
    assert len(rows) == len(want)
    for got, (section, item, series, x, value) in zip(rows, want, strict=True):
        assert (got["section"], got["item"], got["series"], _unquote(got["x"])) == (
            section, item, series, x,
        )  # fmt: skip
        if isinstance(value, float | int):
            assert float(got["value"]) == value
        else:
            assert _unquote(got["value"]) == (value or "")


def test_formulas_are_quoted_and_numbers_are_not() -> None:
    """A cell that would run as a spreadsheet formula gets an apostrophe; -1000 stays a number."""
    rows = _rows(report_csv(sample_doc()))
    deals = [r["value"] for r in rows if r["item"] == "slipped" and r["x"] == "Deal"]
    assert f"'{FORMULA}" in deals and HOSTILE in deals
    amounts = [r["value"] for r in rows if r["item"] == "slipped" and r["x"] == "Amount"]
    assert amounts == ["120000", "9500.25", "45000", "-1000"]
    assert safe_text("-x") == "'-x" and safe_text("@a") == "'@a" and safe_text("a=b") == "a=b"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (-2.5, "-2.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e20, "1e+20"),
        (math.nan, ""),
    ],
)
def test_numbers_are_written_exactly(value: float, text: str) -> None:
    """Whole numbers without `.0`, others in their shortest exact form, NaN as an empty cell."""
    assert number_text(value) == text
    if text:
        assert float(text) == value


def test_a_chart_csv_is_wide_with_gaps_left_empty() -> None:
    """A chart's own CSV: categories down, a column per series, blank where a series has none."""
    chart = next(i for i in sample_doc().sections[1].items if isinstance(i, Chart))
    rows = list(csv.reader(io.StringIO(chart_csv(chart))))
    assert rows[0] == ["Owner", "No next step", "Past close date"]
    assert rows[1:] == [["Ann Lee", "3", "2"], [HOSTILE, "5", "4"], ["2024", "1", ""]]


def test_a_table_csv_is_the_table() -> None:
    """A table's own CSV: its columns, then its rows as written (None empty)."""
    table = Table("t", "T", ("Deal", "Amount", "Open"), (("A", 1.5, None), ("=B", -2, True)))
    assert list(csv.reader(io.StringIO(table_csv(table)))) == [
        ["Deal", "Amount", "Open"],
        ["A", "1.5", ""],
        ["'=B", "-2", "yes"],
    ]


def test_the_json_is_the_document() -> None:
    """The JSON holds every field of the document, dates ISO, each item typed."""
    doc = sample_doc()
    body = json.loads(report_json(doc))
    assert body["since"] == "2026-07-10" and body["until"] == "2026-10-09"
    assert body["generated_at"] == "2026-10-09T07:30:00+00:00"
    assert body["scope"] == list(doc.scope) and body["notes"] == list(doc.notes)
    for section, raw in zip(body["sections"], doc.sections, strict=True):
        assert section["id"] == raw.id and section["title"] == raw.title
        for item, want in zip(section["items"], raw.items, strict=True):
            assert item["id"] == want.id
            if isinstance(want, Table):
                assert item["type"] == "table"
                assert [tuple(r) for r in item["rows"]] == list(want.rows)
            else:
                assert item["type"] == "chart" and item["kind"] == want.kind
                assert [(s["name"], s["x"], s["y"]) for s in item["series"]] == [
                    (s.name, list(s.x), list(s.y)) for s in want.series
                ]
    assert date.fromisoformat(body["until"]) == doc.until


def test_nan_is_null_in_json_and_empty_in_csv() -> None:
    """A missing figure (NaN) is null in the JSON, which stays valid, and an empty cell."""
    doc = sample_doc()
    chart = Chart("c", "C", "bar", (Series("s", ("a", "b"), (1.0, math.nan)),))
    doc = replace(doc, sections=(replace(doc.sections[0], items=(chart,)),))
    body = json.loads(report_json(doc))
    assert body["sections"][0]["items"][0]["series"][0]["y"] == [1.0, None]
    assert [r["value"] for r in _rows(report_csv(doc))] == ["1", ""]
