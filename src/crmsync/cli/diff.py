"""`crmsync diff OLD.yaml NEW.yaml`: what an edit to a workflow would change, over the store.

Both files are checked first, as `validate -c` checks them (a mistake: one line, exit 2). Then
both versions are evaluated over the synced deals and, per connection and per rule, the deals
that would start firing, stop firing or change action are counted, with a few examples. Nothing
is written to the store or to any CRM.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crmsync.actions.undecided import LIMIT as UNDECIDED_LIMIT
from crmsync.cli.format import printable
from crmsync.cli.options import CONFIG_OPTION, FORMAT_OPTION
from crmsync.model.text import cut

if TYPE_CHECKING:
    from crmsync.app.diff import DealRef, WorkflowDiff

__all__ = ["diff_command", "diff_json", "diff_lines"]

VALUE_LIMIT = 80  # characters of an old or new value shown in a table line


@click.command(name="diff")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@CONFIG_OPTION
@click.option(
    "--connection",
    "connections",
    multiple=True,
    metavar="NAME",
    help="Only this connection (repeatable).",
)
@click.option(
    "--examples",
    default=5,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Deals shown for each rule and change (0: counts only).",
)
@click.option(
    "--now",
    "at",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
    default=None,
    help="Evaluate as of this moment, UTC (default: now).",
)
@FORMAT_OPTION
def diff_command(
    old: Path,
    new: Path,
    config_path: Path,
    connections: tuple[str, ...],
    examples: int,
    at: datetime | None,
    fmt: str,
) -> None:
    """Compare two versions of a workflow file over the synced deals: per connection and rule,
    the deals that would start firing, stop firing or change action (flag, task subject, body,
    due date, priority). Nothing is written to any CRM or to the store."""
    from crmsync.app.diff import diff_workflows, load_pair
    from crmsync.config import load_config

    config = load_config(config_path)
    before, after = load_pair(config, old, new)
    now = at.replace(tzinfo=UTC) if at is not None else datetime.now(UTC)
    result = diff_workflows(config, before, after, now, connections=connections, examples=examples)
    if fmt == "json":
        click.echo(json.dumps(diff_json(result)))
        return
    for line in diff_lines(result):
        click.echo(line)


def diff_lines(d: WorkflowDiff) -> list[str]:
    """The diff as the table shows it, CRM data escaped for a terminal."""
    lines = [
        f"diff {d.old.name} ({d.old.path}) -> {d.new.name} ({d.new.path}), "
        f"as of {d.now.isoformat(timespec='seconds')}"
    ]
    if d.old.name != d.new.name:
        lines.append(
            f"note: {d.old.name} and {d.new.name} are two workflows, not two versions of one: "
            "their rules are matched by id (a rule in one file only stops firing, in the "
            "other only starts)"
        )
    for c in d.connections:
        lines.append(
            f"connection {c.connection}: {c.evaluated} deals, "
            f"in scope {c.in_scope_before} -> {c.in_scope_after}"
        )
        still = 0
        for r in c.rules:
            if not r.moved:
                still += 1
                continue
            counts = _counts(r.stopped, r.started, r.changed, r.undecided)
            lines.append(f"  {r.rule}: {r.before} -> {r.after} firings: {counts}")
            lines += _examples("stop", r.stop_examples, r.stopped)
            lines += _examples("start", r.start_examples, r.started)
            if r.changed:
                parts = ", ".join(f"{p} {n}" for p, n in sorted(r.changed_parts.items()))
                lines.append(f"    changed: {parts}")
            for ch in r.change_examples:
                lines.append(f"    change {_deal(ch.deal)}")
                for part, (was, now) in ch.parts.items():
                    lines.append(f"      {part}: {_value(was)} -> {_value(now)}")
            if r.changed > len(r.change_examples) and r.change_examples:
                lines.append(f"    ... and {r.changed - len(r.change_examples)} more changed")
        if still:
            lines.append(f"  {still} {'rule' if still == 1 else 'rules'} unchanged")
    totals = (d.total("stopped"), d.total("started"), d.total("changed"), d.total("undecided"))
    lines.append("total: " + _counts(*totals))
    if totals[3]:
        lines.append(
            f"{totals[3]} undecided: the new version's condition or text fails on those deals "
            f"(past {UNDECIDED_LIMIT:,} failing deals, on every deal of that rule; log event "
            "plan.condition_failed or plan.render_failed says why); apply leaves their "
            "findings open, tasks and flags as they are"
        )
    return [printable(line) for line in lines]


def _counts(stopped: int, started: int, changed: int, undecided: int = 0) -> str:
    counts = f"{stopped} stop firing, {started} start firing, {changed} change action"
    return counts + (f", {undecided} undecided" if undecided else "")


def _examples(verb: str, deals: list[DealRef], count: int) -> list[str]:
    lines = [f"    {verb} {_deal(deal)}" for deal in deals]
    if count > len(deals) and deals:
        lines.append(f"    ... and {count - len(deals)} more")
    return lines


def _deal(deal: DealRef) -> str:
    return f"{deal.key}  {cut(deal.name or '', 100)!r}  owner={deal.owner or '-'}"


def _value(value: str | None) -> str:
    return "(none)" if value is None else repr(cut(value, VALUE_LIMIT))


def diff_json(d: WorkflowDiff) -> dict[str, Any]:
    """The diff as one JSON document (every count; examples as the table's)."""

    def deal(x: DealRef) -> dict[str, Any]:
        return {"key": x.key, "name": x.name, "owner": x.owner}

    return {
        "old": {"workflow": d.old.name, "path": str(d.old.path)},
        "new": {"workflow": d.new.name, "path": str(d.new.path)},
        "now": d.now.isoformat(),
        "totals": {
            "stop": d.total("stopped"),
            "start": d.total("started"),
            "change": d.total("changed"),
            "undecided": d.total("undecided"),
        },
        "connections": [
            {
                "connection": c.connection,
                "evaluated": c.evaluated,
                "in_scope": {"old": c.in_scope_before, "new": c.in_scope_after},
                "rules": [
                    {
                        "rule": r.rule,
                        "firings": {"old": r.before, "new": r.after},
                        "stop": r.stopped,
                        "start": r.started,
                        "change": r.changed,
                        "undecided": r.undecided,
                        "changed_parts": dict(r.changed_parts),
                        "examples": {
                            "stop": [deal(x) for x in r.stop_examples],
                            "start": [deal(x) for x in r.start_examples],
                            "change": [
                                {
                                    **deal(ch.deal),
                                    "parts": {
                                        p: {"old": a, "new": b} for p, (a, b) in ch.parts.items()
                                    },
                                }
                                for ch in r.change_examples
                            ],
                        },
                    }
                    for r in c.rules
                ],
            }
            for c in d.connections
        ],
    }
