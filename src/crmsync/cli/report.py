"""`crmsync report`: the pipeline review as one HTML page (or its numbers as CSV or JSON).

Every figure comes from the store (crmsync.app.report); this module reads the options, says
what is wrong with them in one line (exit 2), and writes the chosen form where it was asked.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import click

from crmsync.cli.options import CONFIG_OPTION
from crmsync.errors import InvalidInput

__all__ = ["FORMATS", "format_for", "report_command", "write_output"]

FORMATS = ("html", "csv", "json")
DEFAULT_HTML = Path("report.html")
_SUFFIXES = {".html": "html", ".htm": "html", ".csv": "csv", ".json": "json"}


def _day(option: str, text: str | None) -> date | None:
    """A YYYY-MM-DD option as a date; anything else one line naming the option."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{option} {text!r}: not a date; write it as YYYY-MM-DD, e.g. 2026-09-01"
        ) from None


def format_for(fmt: str | None, output: Path | None) -> str:
    """The form to write: --format when given, else the output file's suffix, else html."""
    if fmt is not None:
        chosen = fmt.strip().lower()
        if chosen not in FORMATS:
            raise InvalidInput(f"--format {fmt!r}: choose html, csv or json")
        return chosen
    if output is None or str(output) == "-":
        return "html"
    return _SUFFIXES.get(output.suffix.lower(), "html")


def write_output(text: str, output: Path) -> None:
    """Write `text` to `output` whole or not at all (a reader never sees half a report)."""
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInput(f"-o {output}: the folder {folder} does not exist")
    fd, temp = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temp, output)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@click.command(name="report")
@CONFIG_OPTION
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file. Default: report.html for the page; the screen for CSV and JSON. "
    "Its ending (.html, .csv, .json) picks the form when --format is not given.",
)
@click.option(
    "--format",
    "fmt",
    default=None,
    metavar="html|csv|json",
    help="html: one page with charts that opens in any browser, offline; csv: every number "
    "of the report in one sheet; json: the whole report for other tools.",
)
@click.option(
    "--since",
    metavar="DATE",
    help="First day of the period (YYYY-MM-DD). Default: the config's report weeks "
    "(13 unless set) before --until.",
)
@click.option(
    "--until", metavar="DATE", help="Last day of the period (YYYY-MM-DD). Default: today."
)
@click.option(
    "--connection",
    "connections",
    multiple=True,
    metavar="NAME",
    help="Only this CRM connection (repeatable). Default: every connection, side by side "
    "and together.",
)
@click.option("--pipeline", metavar="P", help="Only deals in this pipeline.")
@click.option("--owner", metavar="O", help="Only deals of this owner (name, email or CRM id).")
@click.option("--team", metavar="T", help="Only deals of this team's owners.")
@click.option(
    "--quota",
    "quota_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Quotas to show coverage against: a CSV file with the header "
    "owner_or_team,period_start,period_end,amount,currency (an owner's email or id, or a "
    "team). Default: the config's report.quota_file; without one, coverage is left out.",
)
def report_command(
    config_path: Path,
    output: Path | None,
    fmt: str | None,
    since: str | None,
    until: str | None,
    connections: tuple[str, ...],
    pipeline: str | None,
    owner: str | None,
    team: str | None,
    quota_file: Path | None,
) -> None:
    """The weekly pipeline review: where the open pipeline stands by stage (amount and
    weighted amount), how it moved over the period (new, pulled in, pushed out, amount up or
    down, won, lost), the deals that slipped, how long deals sit in each stage and how they
    convert, the open findings and hygiene score of each owner, and coverage against quota
    when a quota file is given.

    The numbers come from crmsync's daily snapshots of the synced deals, so run `crmsync sync`
    (or the service) first. Nothing is sent to any CRM.

    \b
    Examples:
      crmsync report                          report.html for the last 13 weeks
      crmsync report --owner "Ann Lee" -o ann.html
      crmsync report --since 2026-07-01 --until 2026-09-30 --format csv > q3.csv
    """
    from crmsync.app.report import ReportOptions, build_report
    from crmsync.app.snapshots import fill_report_windows
    from crmsync.config import load_config
    from crmsync.report.document import Chart
    from crmsync.report.html import render_html
    from crmsync.report.tabular import report_csv, report_json
    from crmsync.store import Store

    form = format_for(fmt, output)
    first, last = _day("--since", since), _day("--until", until)
    if first is not None and last is not None and first > last:
        raise InvalidInput(f"--since {first} is after --until {last}: the period would be empty")
    if quota_file is not None and not quota_file.is_file():
        raise InvalidInput(f"--quota {quota_file}: no such file")
    config = load_config(config_path)
    options = ReportOptions(
        since=first,
        until=last,
        connections=connections,
        pipeline=pipeline,
        owner=owner,
        team=team,
        quota_file=quota_file,
    )
    now = datetime.now(UTC)
    with Store.open(config.store.url, create=False) as store:
        # days before crmsync ran (or while it was stopped) are rebuilt from history first
        fill_report_windows(store, config, connections, now=now, since=first)
        doc = build_report(store, config, options, now=now)
    text = {"html": render_html, "csv": report_csv, "json": report_json}[form](doc)
    if output is None and form == "html":
        output = DEFAULT_HTML
    if output is None or str(output) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_output(text, output)
    charts = sum(isinstance(item, Chart) for s in doc.sections for item in s.items)
    click.echo(f"Wrote {output} ({form}, {charts} charts, {doc.since} to {doc.until}).")
