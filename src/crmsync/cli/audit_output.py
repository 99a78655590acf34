"""How `crmsync audit` prints: entries and per-workflow, per-rule summaries, as a table for
people, CSV for a spreadsheet or JSON lines for scripts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import click

from crmsync.cli.format import plain, printable
from crmsync.store.audit_log import RuleSummary, rule_label

ENTRY_COLUMNS = (
    "at", "state", "kind", "connection", "workflow", "rule", "opp_key", "native_id", "detail",
    "key",
)  # fmt: skip
# the states in the order an action goes through them; any other follows, alphabetically
STATE_ORDER = (
    "opened", "planned", "sent", "confirmed", "failed", "parked", "skipped", "cancelled",
    "resolved", "dismissed",
)  # fmt: skip


def print_audit(rows: Sequence[dict[str, Any]], fmt: str) -> None:
    """Audit entries, oldest first; a row without a rule shows as `flags` or `digest`."""
    shown = [
        {**r, "rule": rule_label(r["rule"], str(r["kind"])), "rule_id": r["rule"]} for r in rows
    ]
    if fmt == "json":
        for row in shown:
            click.echo(json.dumps({k: plain(v) for k, v in row.items()}))
        return
    if fmt == "csv":
        _csv(ENTRY_COLUMNS, [[row[c] for c in ENTRY_COLUMNS] for row in shown])
        return
    if not shown:
        click.echo("no audit entries match")
        return
    for row in shown:
        detail = f"  {row['detail']}" if row["detail"] else ""
        click.echo(
            printable(
                f"{row['at']:%Y-%m-%d %H:%M:%S}  {row['state']:<9} {row['kind']:<13} "
                f"{row['opp_key']}  {row['workflow']}/{row['rule']}{detail}"
            )
        )


def print_audit_summary(summaries: Sequence[RuleSummary], fmt: str) -> None:
    """Per workflow its total, then each rule: entries, deals, entries per state, first and
    last entry."""
    states = _states(summaries)
    if fmt == "json":
        for s in summaries:
            click.echo(
                json.dumps(
                    {
                        "workflow": s.workflow,
                        "rule": s.rule,
                        "entries": s.entries,
                        "deals": s.deals,
                        "by_state": {k: s.by_state[k] for k in states if s.by_state[k]},
                        "first_at": plain(s.first_at),
                        "last_at": plain(s.last_at),
                    }
                )
            )
        return
    if fmt == "csv":
        head = ("workflow", "rule", "entries", "deals", *states, "first_at", "last_at")
        _csv(head, [[s.workflow, s.rule, s.entries, s.deals,
                     *(s.by_state[k] for k in states), s.first_at, s.last_at]
                    for s in summaries])  # fmt: skip
        return
    if not summaries:
        click.echo("no audit entries match")
        return
    width = max(len(f"{s.workflow}/{s.rule}") for s in summaries)
    for s in summaries:
        counts = " ".join(f"{k}={s.by_state[k]}" for k in states if s.by_state[k])
        span = (
            f"  {s.first_at:%Y-%m-%d %H:%M} .. {s.last_at:%Y-%m-%d %H:%M}"
            if s.first_at and s.last_at
            else ""
        )
        click.echo(
            printable(
                f"{f'{s.workflow}/{s.rule}':<{width}}  {s.entries:>6} entries "
                f"{s.deals:>5} {'deal ' if s.deals == 1 else 'deals'}  {counts}{span}"
            )
        )


def _states(summaries: Sequence[RuleSummary]) -> list[str]:
    seen = {k for s in summaries for k in s.by_state}
    return [k for k in STATE_ORDER if k in seen] + sorted(seen - set(STATE_ORDER))


def _csv(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """CSV with a header; a cell a spreadsheet would take for a formula starts with `'`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    click.echo(out.getvalue(), nl=False)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    value = plain(value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
