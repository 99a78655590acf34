"""Output that commands and the demo share: sync summaries, live progress, plan summaries and
apply reports."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import click

from crmsync.model.text import counted, cut

# C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
LINE_LIMIT = 300  # characters of one line of the plan table and its summary


def printable(text: str, limit: int = LINE_LIMIT) -> str:
    """`text` for a terminal: each control character shown escaped (``\\x1b``), cut to `limit`
    characters with an ellipsis. A deal's name or owner is CRM data, not trusted text."""
    shown = _UNPRINTABLE.sub(_escape, text[: limit + 1])  # escaping only lengthens it
    return cut(shown, limit)


def _escape(match: re.Match[str]) -> str:
    return match[0].encode("unicode_escape").decode("ascii")


def progress_line() -> Any:
    """A one-line live progress display on a terminal; nothing when output is piped."""
    if not sys.stderr.isatty():
        return None

    def show(summary: Any) -> None:
        click.echo(
            f"\r  {summary.connection}: fetched {summary.fetched}, "
            f"api calls {summary.api_calls}   ",
            nl=False,
            err=True,
        )

    return show


def print_summaries(summaries: list[Any]) -> None:
    """One line per sync: its kind, status and counts, then its error and messages."""
    if sys.stderr.isatty():
        click.echo("", err=True)
    for s in summaries:
        quota = (
            f" quota_left={s.quota_limit - s.quota_used}"
            if s.quota_used is not None and s.quota_limit is not None
            else ""
        )
        click.echo(
            f"{s.connection}: {s.kind} {s.status} fetched={s.fetched} "
            f"inserted={s.inserted} updated={s.updated} deleted={s.deleted} "
            f"set_aside={s.set_aside} api_calls={s.api_calls}{quota} "
            f"seconds={s.seconds:.1f}"
        )
        if s.error and s.status != "failed":  # a failure has its line on stderr
            click.echo(f"  {s.error}")
        for message in s.messages:
            click.echo(f"  {message}")


def print_failures(summaries: list[Any]) -> None:
    """One line on stderr per connection whose sync failed: the connection, what failed in the
    CRM's words, and whether retrying later may work."""
    for s in summaries:
        if s.status == "failed":
            transient = s.failure is not None and s.failure.transient
            hint = "; retry later" if transient else ""
            click.echo(f"crmsync: error: {s.connection}: sync failed: {s.error}{hint}", err=True)


def print_plan_summary(
    summaries: list[Any], owners: int = 10, modes: dict[tuple[str, str], Any] | None = None
) -> None:
    """Rules fired per workflow and connection (with its effective mode, when `modes` holds
    it), and the owners with the most firings."""
    click.echo("")
    for s in summaries:
        mode = (modes or {}).get((s.workflow, s.connection))
        shown = f" ({mode})" if mode is not None else ""
        click.echo(
            f"{s.workflow} on {s.connection}{shown}: {s.in_scope} of "
            f"{counted(s.evaluated, 'opportunity', 'opportunities')} in scope, "
            f"{s.opportunities_fired} with findings, {counted(s.firings, 'rule firing')}"
        )
        for rule, n in s.by_rule.most_common():
            click.echo(f"  {rule:32s} {n:>6d}")
        if getattr(s, "render_errors", 0):
            click.echo(
                f"  {counted(s.render_errors, 'firing')} set aside: their task text could not be "
                "rendered "
                "(log event plan.render_failed says why)"
            )
    total: Counter[str] = Counter()
    for s in summaries:
        total.update(s.by_owner)
    if total:
        click.echo(f"Firings by owner (top {owners}):")
        for owner, n in total.most_common(owners):
            click.echo(f"  {printable(owner, 100):32s} {n:>6d}")


def print_apply_report(report: Any, fmt: str) -> None:
    """Per workflow what was planned, per connection what was sent, and the totals."""
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), default=plain))
        return
    for w in report.workflows:
        planned = ", ".join(f"{k}={v}" for k, v in sorted(w.planned.items())) or "nothing new"
        click.echo(
            f"{w.workflow} on {w.connection} ({w.mode}, from {w.mode_source}): "
            f"firings={w.firings} opened={w.opened} "
            f"reminded={w.reminded} resolved={w.resolved} digested={w.digested}"
            + (f" waiting={w.waiting}" if w.waiting else "")
            + (f" undecided={w.undecided}" if w.undecided else "")
            + (f" set_aside={w.set_aside}" if w.set_aside else "")
            + f"; planned: {planned}"
        )
    for s in report.sends:
        click.echo(
            f"{s.connection}: created={s.created} updated={s.updated} resolved={s.completed} "
            f"flagged={s.flagged} superseded={s.superseded} parked={s.parked} "
            f"skipped={s.skipped} left={s.left} api_calls={s.api_calls}"
            + (f"  left to reps: {s.kept} (task deleted, completed or re-dated)" if s.kept else "")
            + (f"  stopped: {s.stopped}" if s.stopped else "")
        )
    if report.workflows and all(w.mode != "live" for w in report.workflows):  # planned above
        click.echo("total: nothing recorded or sent (shadow or dry-run; the plans are above)")
        return
    # the connections' lines added up, under their names
    click.echo(
        f"total: planned={report.planned()} created={report.total('created')} "
        f"updated={report.total('updated')} resolved={report.total('completed')} "
        f"flagged={report.total('flagged')} superseded={report.total('superseded')} "
        f"parked={report.total('parked')} skipped={report.total('skipped')} "
        f"left={report.total('left')} api_calls={report.total('api_calls')}"
    )


def plain(value: Any) -> Any:
    """A value as JSON can hold it: dates and times in ISO 8601."""
    return value.isoformat() if isinstance(value, date | datetime) else value


def describe_cursor(value: str | None, ids_at_value: int = 0) -> str:
    """A sync cursor in words: `modified since 2026-11-20 12:00:00 UTC (search), 0 ids at
    that stamp` (HubSpot keeps a small JSON state, Salesforce a SystemModstamp)."""
    if not value:
        return "-"
    ids = f"{ids_at_value} {'id' if ids_at_value == 1 else 'ids'} at that stamp"
    if not value.startswith("{"):
        return f"modified since {_stamp(value)} (SystemModstamp), {ids}"
    try:
        state = json.loads(value)
    except ValueError:
        return printable(value)
    if not isinstance(state, dict):
        return printable(value)
    if state.get("mode") == "full":
        after = f", next page after id {state['after']}" if state.get("after") else ""
        return f"full read under way (started {_stamp(state.get('started'))}{after})"
    text = f"modified since {_stamp(state.get('since'))} (search)"
    if state.get("until"):
        text += f", window until {_stamp(state['until'])} after id {state.get('after_id') or 0}"
    return f"{text}, {ids}"


def _stamp(value: Any) -> str:
    """An ISO 8601 stamp as `2026-11-20 12:00:00 UTC`; anything else as it is, printable."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return printable(str(value), 60)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
