"""`crmsync plan --opportunity`: one deal, every rule of every workflow, fired or not and why.

The table is for an admin: the deal's line, then per workflow whether the deal is in its scope,
then one line per rule (``FIRED`` with its reasons, or ``not fired`` with why), the values the
rule read under it, and the actions a firing would take. JSON gives one line per workflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from crmsync.cli.format import printable
from crmsync.model.text import cut


def explain_command(
    config_path: Path,
    ref: str,
    workflows: tuple[str, ...],
    connections: tuple[str, ...],
    fmt: str,
) -> None:
    """Print the explanation of the deal `ref` names (the body of `plan --opportunity`)."""
    from crmsync.app.explain import AmbiguousOpportunity, explain_opportunity

    try:
        opp, explanations = explain_opportunity(
            config_path, ref, workflows=workflows, connections=connections
        )
    except AmbiguousOpportunity as e:
        for match in e.matches:
            click.echo(printable(deal_line(match)), err=True)
        raise
    if fmt == "json":
        for explanation in explanations:
            click.echo(json.dumps(explanation.as_json()))
        return
    click.echo(printable(deal_line(opp)))
    for explanation in explanations:
        for line in explanation_lines(explanation):
            click.echo(printable(line))


def deal_line(opp: Any) -> str:
    """A deal on one line: key, name, owner, stage (canonical and native), amount."""
    amount = f"{opp.amount:,.0f}" if opp.amount is not None else "-"
    native = f" ({opp.stage})" if opp.stage and opp.stage != opp.stage_canonical else ""
    deleted = "  DELETED" if opp.deleted else ""
    return (
        f"{opp.key}  {cut(opp.name or '', 100)!r}  owner={opp.owner_name or opp.owner_id or '-'}"
        f"  stage={opp.stage_canonical or '-'}{native}  amount={amount}"
        f"  pipeline={opp.pipeline or '-'}{deleted}"
    )


def explanation_lines(e: Any) -> list[str]:
    """One workflow's explanation as table lines."""
    mode = f"  (mode {e.mode})" if e.mode else ""
    lines = [f"[{e.workflow}] {e.scope}{mode}"]
    if e.scope_values:
        lines.append(f"    read: {_values(e.scope_values)}")
    for r in e.rules:
        verdict = "FIRED    " if r.fired else "not fired"
        lines.append(f"  {verdict} {r.rule} ({r.kind}): {r.why}")
        if r.values:
            lines.append(f"            read: {_values(r.values)}")
        if r.route:
            lines.append(f"            route {r.route}")
        if r.finding:
            lines.append(f"            finding: {r.finding}")
        for a in r.actions:
            if a.kind == "flag":
                lines.append(f"            -> set {a.field} = {a.value}")
            else:
                lines.append(
                    f'            -> task for the owner: "{a.subject}" due {a.due_date} '
                    f"({a.priority})"
                )
    return lines


def _values(values: dict[str, Any]) -> str:
    return "  ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in values.items())
