"""`crmsync validate`, `crmsync test` and `crmsync plan`: checking workflow files, running their
examples, and previewing what they would do."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from crmsync.cli.format import print_plan_summary, printable
from crmsync.cli.options import CONFIG_OPTION, CONNECTION_OPTION, WORKFLOW_OPTION
from crmsync.errors import InvalidInput
from crmsync.model.text import counted, cut


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(path_type=Path, readable=False),  # loading words a bad path in one line
    envvar="CRMSYNC_CONFIG",
    help="Also check the service config, and the workflows against its connections.",
)
def validate(paths: tuple[Path, ...], config_path: Path | None) -> None:
    """Check workflow files (default: the workflows folder) and the service configuration.

    Errors name the file, line and column; the exit code is 2 when anything is wrong.
    """
    from crmsync.app.modes import effective_mode
    from crmsync.app.plan import mappings
    from crmsync.config import load_config
    from crmsync.files import Problems
    from crmsync.workflows.load import check_workflows

    maps = None
    config = None
    targets = list(paths)
    if config_path is not None:
        try:
            config = load_config(config_path)
        except Problems as e:
            _fail(e.lines)
        maps = mappings(config)
        click.echo(f"ok: {config_path} ({counted(len(config.connections), 'connection')})")
        targets = targets or [config.workflow_dir()]
    found, problems = check_workflows(targets or [Path("workflows")], connections=maps)
    for loaded in found:
        wf = loaded.workflow
        click.echo(
            f"ok: {loaded.path} (workflow {wf.name}: {counted(len(wf.rules), 'rule')}, "
            f"{counted(len(wf.examples), 'example')}); mode {effective_mode(config, loaded)}"
        )
    if config is not None and not paths and not problems:  # every workflow is known
        known = {loaded.workflow.name for loaded in found}
        problems = [
            f"{config_path}: writeback.modes: no workflow named '{name}' "
            f"(known: {', '.join(sorted(known)) or 'none'})"
            for name in config.writeback.modes
            if name not in known
        ]
    if problems:
        _fail(problems)
    if maps is None:
        click.echo(
            "note: connections, flag fields and native stage values were not checked; pass --config"
        )


def _fail(problems: list[str]) -> NoReturn:
    """Every problem on its own line on stderr, then exit code 2 (invalid input)."""
    for line in problems:
        click.echo(f"crmsync: error: {line}", err=True)
    sys.exit(InvalidInput.exit_code)


@click.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def test_command(paths: tuple[Path, ...]) -> None:
    """Run the examples in workflow files and report like a test runner.

    Each example says which rules an opportunity should fire and, in `expect:`, what they
    should write (subject, body, due date, priority, flag); exit code 1 when any example fires
    something else or writes something else.
    """
    from crmsync.workflows.examples import run_examples
    from crmsync.workflows.load import load_workflows

    passed = failed = 0
    for loaded in load_workflows(list(paths) or [Path("workflows")]):
        for result in run_examples(loaded):
            if result.passed:
                passed += 1
                click.echo(f"PASS {result.workflow}: {result.name}")
                continue
            failed += 1
            click.echo(f"FAIL {result.workflow}: {result.name}")
            fired = ", ".join(sorted(result.fired)) or "nothing"
            if sorted(result.expected) == sorted(result.fired):  # the right rules, another fault
                click.echo(f"     fired:    {fired}, as expected; but:")
            else:
                click.echo(f"     expected: {', '.join(sorted(result.expected)) or 'nothing'}")
                click.echo(f"     fired:    {fired}")
            for rule, reasons in result.reasons.items():
                click.echo(f"       {rule}: {'; '.join(reasons)}")
            if result.out_of_scope:
                click.echo(printable(f"     the example's deal is {result.out_of_scope}"))
            for rule, why in result.why_not.items():
                click.echo(printable(f"     {rule} did not fire: {why}"))
            for rule, error in result.errors.items():
                click.echo(f"     {rule}: task {error}")
            for m in result.mismatches:
                click.echo(f"     {m.rule}: {m.part}")
                click.echo(printable(f"       expected: {m.expected}"))
                click.echo(printable(f"       got:      {m.got}"))
    click.echo(f"{passed} passed, {failed} failed")
    if failed:
        sys.exit(1)


@click.command(name="plan")
@CONFIG_OPTION
@WORKFLOW_OPTION
@CONNECTION_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people; json lines for scripts.",
)
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(0),
    help="Opportunities to show in the table (0: all). JSON shows all.",
)
@click.option(
    "--opportunity",
    "opportunity",
    metavar="ID",
    help="Explain one deal (its CRM id, connection:id, or name): every rule, fired or not, why.",
)
@click.option(
    "--explain-engine",
    is_flag=True,
    help="Say which rules run on the columnar engine and which deal by deal (and why); "
    "evaluate nothing.",
)
def plan_command(
    config_path: Path,
    workflows: tuple[str, ...],
    connections: tuple[str, ...],
    fmt: str,
    limit: int,
    opportunity: str | None,
    explain_engine: bool,
) -> None:
    """Preview what the workflows would do: which rules fire on which deals, why, and the
    flags and tasks that would follow. Nothing is written to any CRM."""
    if explain_engine:
        from crmsync.app.plan import engine_layouts

        for workflow, connection, lines in engine_layouts(
            config_path, workflows=workflows, connections=connections
        ):
            if fmt == "json":
                click.echo(
                    json.dumps({"workflow": workflow, "connection": connection, "engine": lines})
                )
                continue
            click.echo(f"{workflow} on {connection}:")
            for line in lines:
                click.echo(f"  {line}")
        return
    if opportunity is not None:
        from crmsync.cli.explain import explain_command

        explain_command(config_path, opportunity, workflows, connections, fmt)
        return
    from crmsync.app.outcomes import outcome_key, outcomes_for
    from crmsync.app.plan import plan

    now = datetime.now(UTC)
    outcomes = outcomes_for(config_path, now, workflows=workflows, connections=connections)
    shown: dict[str, int] = {"opportunities": 0}
    last_key = {"key": ""}

    def table(f: Any) -> None:
        opp = f.opportunity
        header = opp.key != last_key["key"]
        if header:
            last_key["key"] = opp.key
            shown["opportunities"] += 1
        if limit and shown["opportunities"] > limit:
            return
        for line in firing_lines(f, header=header, outcome=outcomes.get(outcome_key(f))):
            click.echo(line)

    def jsonl(f: Any) -> None:
        outcome = outcomes.get(outcome_key(f))
        now_json = {"now": {"kind": outcome.kind, "text": outcome.text}} if outcome else {}
        click.echo(json.dumps(f.as_json() | now_json))

    modes: dict[tuple[str, str], Any] = {}
    summaries = plan(
        config_path,
        workflows=workflows,
        connections=connections,
        now=now,
        on_firing=table if fmt == "table" else jsonl,
        modes=modes,
    )
    if fmt == "json":
        for s in summaries:
            mode = modes[s.workflow, s.connection]
            summary = plan_summary_json(s) | {"mode": mode.mode, "mode_source": mode.source}
            click.echo(json.dumps({"summary": summary}))
        return
    if limit and shown["opportunities"] > limit:
        more = counted(shown["opportunities"] - limit, "more opportunity", "more opportunities")
        click.echo(f"... and {more} (--limit 0 shows all, --format json for scripts)")
    print_plan_summary(summaries, modes=modes)
    if outcomes:
        click.echo(outcomes_line(outcomes.values()))


# How the plan's summary names each kind of outcome (crmsync.app.outcomes.Outcome.kind).
OUTCOME_WORDS = {
    "new": "new tasks",
    "digest": "into digests (over the owner's daily budget)",
    "reminder": "reminders due",
    "open": "already open (nothing new)",
    "waiting": "waiting for a task (the go-live ramp, or the owner's daily budget)",
    "held": "held at the go-live",
    "flag": "flag only",
}


def outcomes_line(outcomes: Any) -> str:
    """The firings by what the write-back would do with them, on one line."""
    counts = Counter(o.kind for o in outcomes)
    parts = [f"{counts[kind]} {words}" for kind, words in OUTCOME_WORDS.items() if counts[kind]]
    return f"write-back now: {', '.join(parts)}"


def firing_lines(f: Any, *, header: bool, outcome: Any = None) -> list[str]:
    """A firing as the plan table shows it (led by its deal's line when `header`): CRM data in
    it escaped for a terminal and each line cut to `format.LINE_LIMIT`."""
    opp = f.opportunity
    lines = []
    if header:
        amount = f"{opp.amount:,.0f}" if opp.amount is not None else "-"
        name = cut(opp.name or "", 100)
        lines.append(
            f"{opp.key}  {name!r}  owner={opp.owner_name or opp.owner_id or '-'}"
            f"  stage={opp.stage_canonical or opp.stage or '-'}  amount={amount}"
        )
    lines.append(f"  [{f.workflow}] {f.rule_id}: {'; '.join(f.reasons)}")
    if getattr(f, "values", None):  # a custom rule: the values its condition read
        from crmsync.workflows.explain import shown

        read = "  ".join(
            f"{k}={json.dumps(shown(v), ensure_ascii=False)}" for k, v in f.values.items()
        )
        lines.append(f"      read: {read}")
    if getattr(f, "route", None):
        lines.append(f"      route {f.route}")
    if outcome is not None:  # what the write-back would do, given the findings it holds
        lines.append(f"      now: {outcome.text}")
    for a in f.actions:
        if a.kind == "flag":
            lines.append(f"      -> set {a.field} = {a.value}")
        else:
            remind = f", remind every {a.remind_every_days} days" if a.remind_every_days else ""
            lines.append(
                f'      -> task for the owner: "{a.subject}" due {a.due_date} '
                f"({a.priority}{remind})"
            )
    return [printable(line) for line in lines]


def plan_summary_json(s: Any) -> dict[str, Any]:
    """One workflow's plan summary on one connection, as `plan --format json` prints it."""
    return {
        "workflow": s.workflow,
        "connection": s.connection,
        "evaluated": s.evaluated,
        "in_scope": s.in_scope,
        "firings": s.firings,
        "opportunities_fired": s.opportunities_fired,
        "by_rule": dict(s.by_rule),
        "by_owner": dict(s.by_owner),
        "render_errors": s.render_errors,
    }
