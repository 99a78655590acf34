"""`crmsync report`: where it writes which form, the options it hands on, one-line mistakes."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import crmsync.app.report
import crmsync.app.snapshots
from crmsync.app.report import ReportOptions
from crmsync.cli import main
from crmsync.report.document import ReportDoc
from crmsync.store import Store
from tests.report.dom import parse
from tests.report.sample import sample_doc

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
store: {{url: "sqlite:///{db}"}}
connections:
  - name: sf
    type: salesforce
    mapping: {mapping}
    auth: {{method: access_token, instance_url: "https://x.my.salesforce.com", access_token: t}}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config with an empty SQLite store, in a working folder of its own."""
    path = tmp_path / "crmsync.yaml"
    db = tmp_path / "crmsync.db"
    mapping = ROOT / "connectors" / "salesforce.yaml"
    path.write_text(CONFIG.format(db=db, mapping=mapping), encoding="utf-8")
    Store.open(f"sqlite:///{db}").close()  # made, as a sync would (report does not make one)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return path


@pytest.fixture
def filled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[str, ...], Any]]:
    """The (connections, since) of each filling of the snapshot window before a report."""
    seen: list[tuple[tuple[str, ...], Any]] = []

    def fill(store: Any, config: Any, connections: Any, *, now: Any, since: Any = None) -> int:
        seen.append((tuple(connections), since))
        return 0

    monkeypatch.setattr(crmsync.app.snapshots, "fill_report_windows", fill)
    return seen


@pytest.fixture
def asked(
    monkeypatch: pytest.MonkeyPatch, filled: list[tuple[tuple[str, ...], Any]]
) -> list[ReportOptions]:
    """The options each report was built with; each build returns the sample document."""
    seen: list[ReportOptions] = []

    def build(store: Any, config: Any, options: ReportOptions, *, now: Any) -> ReportDoc:
        assert filled, "the snapshot window is filled before the report reads it"
        seen.append(options)
        return sample_doc()

    monkeypatch.setattr(crmsync.app.report, "build_report", build)
    return seen


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--log-level", "error", "report", "-c", str(config), *args])


def test_by_default_it_writes_report_html_and_says_where(config: Path, asked: list[Any]) -> None:
    """No -o: the page goes to report.html in the current folder, one line says so."""
    result = _run(config)
    assert result.exit_code == 0, result.output
    page = Path("report.html")
    assert result.stdout == "Wrote report.html (html, 5 charts, 2026-07-10 to 2026-10-09).\n"
    assert parse(page.read_text(encoding="utf-8")).find("body")[0].attrs["data-charts"] == "5"
    assert asked == [ReportOptions()]


@pytest.mark.parametrize(
    ("args", "form"),
    [
        (["-o", "out.csv"], "csv"),
        (["-o", "out.JSON"], "json"),
        (["-o", "out.htm"], "html"),
        (["-o", "out.txt"], "html"),
        (["-o", "out.csv", "--format", "json"], "json"),
    ],
)
def test_the_file_suffix_picks_the_form(
    config: Path, asked: list[Any], args: list[str], form: str
) -> None:
    """The output's suffix picks the form unless --format says otherwise."""
    result = _run(config, *args)
    assert result.exit_code == 0, result.output
    text = Path(args[1]).read_bytes().decode("utf-8")  # as written: CRLF kept
    if form == "json":
        assert json.loads(text)["until"] == "2026-10-09"
    elif form == "csv":
        assert text.startswith("section,item,series,x,value\r\n")
    else:
        assert text.startswith("<!DOCTYPE html>")
    assert f"({form}, 5 charts" in result.stdout
    assert [p.name for p in Path().iterdir()] == [args[1]]  # no temporary file left


@pytest.mark.parametrize("form", ["csv", "json"])
def test_csv_and_json_go_to_the_screen_without_o(config: Path, asked: list[Any], form: str) -> None:
    """--format csv or json without -o prints the report (to pipe or redirect)."""
    result = _run(config, "--format", form)
    assert result.exit_code == 0, result.output
    if form == "json":
        assert json.loads(result.stdout)["title"] == "Pipeline review"
    else:
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert {r["item"] for r in rows} >= {"flow", "slipped"}
    assert not list(Path().iterdir())


def test_the_options_reach_the_report(
    config: Path, asked: list[Any], filled: list[Any], tmp_path: Path
) -> None:
    """Period, connections, pipeline, owner, team and quota file are handed on as given; the
    snapshot window is filled for those connections, back to --since."""
    quotas = tmp_path / "quotas.csv"
    quotas.write_text("owner,start,end,amount,currency\n", encoding="utf-8")
    result = _run(
        config,
        *("--since", "2026-01-05", "--until", "2026-03-29"),
        *("--connection", "sf", "--connection", "hs"),
        *("--pipeline", "default", "--owner", "Ann Lee", "--team", "EMEA"),
        *("--quota", str(quotas), "--format", "json"),
    )
    assert result.exit_code == 0, result.output
    assert asked == [
        ReportOptions(
            since=date(2026, 1, 5),
            until=date(2026, 3, 29),
            connections=("sf", "hs"),
            pipeline="default",
            owner="Ann Lee",
            team="EMEA",
            quota_file=quotas,
        )
    ]
    assert filled == [(("sf", "hs"), date(2026, 1, 5))]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--since", "2026-13-01"],
            "--since '2026-13-01': not a date; write it as YYYY-MM-DD, e.g. 2026-09-01",
        ),
        (["--until", "last week"], "--until 'last week': not a date; write it as YYYY-MM-DD"),
        (
            ["--since", "2026-05-02", "--until", "2026-05-01"],
            "--since 2026-05-02 is after --until 2026-05-01: the period would be empty",
        ),
        (["--format", "pdf"], "--format 'pdf': choose html, csv or json"),
        (["--quota", "missing.csv"], "--quota missing.csv: no such file"),
        (["-o", "nowhere/r.html"], "-o nowhere/r.html: the folder nowhere does not exist"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    config: Path, asked: list[Any], args: list[str], line: str
) -> None:
    """A bad date, period, form, quota file or output folder: one line, exit 2, nothing written."""
    result = _run(config, *args)
    assert result.exit_code == 2
    (said,) = result.stderr.splitlines()
    assert said.startswith(f"crmsync: error: {line}")
    assert not list(Path().iterdir())


def test_help_speaks_to_a_sales_manager() -> None:
    """--help names what the review shows and every option, in plain words."""
    result = CliRunner().invoke(main, ["report", "--help"])
    assert result.exit_code == 0
    text = result.output
    for words in ("weighted amount", "slipped", "hygiene score", "coverage", "report.html"):
        assert words in text
    for option in ("--since", "--until", "--connection", "--pipeline", "--owner", "--team",
                   "--quota", "--format", "--output"):  # fmt: skip
        assert option in text
    for jargon in ("ReportDoc", "ReportOptions", "stdout", "build_report", "series"):
        assert jargon not in text


def test_an_empty_store_still_makes_a_report(config: Path) -> None:
    """Before any sync the real report is written and says why it is empty."""
    result = _run(config, "-o", "empty.json", "--until", "2026-10-09")
    assert result.exit_code == 0, result.output
    body = json.loads(Path("empty.json").read_text(encoding="utf-8"))
    assert body["until"] == "2026-10-09" and body["notes"]
