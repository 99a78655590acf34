"""The `crmsync` command: what RevOps and admins run."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from crmsync import __version__
from crmsync.errors import CrmsyncError


class Cli(click.Group):
    """Turns crmsync's own errors into one line on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CrmsyncError as e:
            click.echo(f"crmsync: error: {e}", err=True)
            sys.exit(e.exit_code)


@click.group(cls=Cli)
@click.version_option(__version__, prog_name="crmsync")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    envvar="CRMSYNC_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="How much to log (to stderr).",
)
@click.option(
    "--log-format",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "json", "console"]),
    help="JSON lines, or readable console lines; auto picks console on a terminal.",
)
def main(log_level: str, log_format: str) -> None:
    """crmsync keeps your sales pipeline honest: it syncs Salesforce opportunities and HubSpot
    deals, checks them against your workflow rules, and writes flags and follow-up tasks back."""
    from crmsync.logs import configure

    configure(log_level, None if log_format == "auto" else log_format == "json")


@main.command()
@click.option(
    "--opportunities",
    "-n",
    default=1000,
    show_default=True,
    type=click.IntRange(0),
    help="How many opportunities (Salesforce) and deals (HubSpot) to generate.",
)
@click.option(
    "--seed",
    default=7,
    show_default=True,
    type=int,
    help="Seed for the generated data; the same seed gives the same records.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--salesforce-port",
    default=0,
    type=click.IntRange(0, 65535),
    help="Port for the Salesforce API (default: any free port).",
)
@click.option(
    "--hubspot-port",
    default=0,
    type=click.IntRange(0, 65535),
    help="Port for the HubSpot API (default: any free port).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the test CA and JWT key (default: a temporary folder).",
)
@click.option(
    "--search-delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds before HubSpot search sees a write, like HubSpot's index lag.",
)
@click.option(
    "--enforce-rate-limits",
    is_flag=True,
    help="Answer 429 when HubSpot's per-second and ten-second limits are exceeded.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the connection details as one JSON line (for scripts).",
)
def sandbox(
    opportunities: int,
    seed: int,
    host: str,
    salesforce_port: int,
    hubspot_port: int,
    state_dir: Path | None,
    search_delay: float,
    enforce_rate_limits: bool,
    as_json: bool,
) -> None:
    """Run a local Salesforce and HubSpot with generated pipeline data, until Ctrl-C.

    Point crmsync (or any client) at the URLs it prints to try things out without a real CRM.
    """
    from crmsync.sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(
        opportunities=opportunities,
        seed=seed,
        host=host,
        salesforce_port=salesforce_port,
        hubspot_port=hubspot_port,
        state_dir=state_dir,
        search_delay=search_delay,
        enforce_rate_limits=enforce_rate_limits,
    )
    sb = Sandbox(config).start()
    try:
        info = connection_info(sb)
        if as_json:
            click.echo(json.dumps(info), nl=True)
        else:
            _print_info(info, opportunities)
        sys.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
    finally:
        sb.stop()


def connection_info(sb: Any) -> dict[str, Any]:
    """What a client needs to reach a running sandbox."""
    c = sb.salesforce.credentials
    return {
        "ca_path": str(sb.ca_path),
        "salesforce": {
            "login_url": sb.salesforce.url,
            "instance_url": sb.salesforce.url,
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "username": c.username,
            "password": c.password,
            "security_token": c.security_token,
            "refresh_token": c.refresh_token,
            "access_token": c.static_access_token,
            "jwt_private_key_path": str(sb.salesforce.jwt_private_key_path),
            "admin_url": sb.salesforce.url + "/__sandbox",
        },
        "hubspot": {
            "base_url": sb.hubspot.url,
            "access_token": sb.hubspot.access_token,
            "admin_url": sb.hubspot.url + "/__sandbox",
        },
    }


def _print_info(info: dict[str, Any], n: int) -> None:
    sf, hs = info["salesforce"], info["hubspot"]
    click.echo(f"crmsync sandbox is running with {n} opportunities in each CRM. Ctrl-C stops it.")
    click.echo("")
    click.echo(f"  Salesforce  {sf['instance_url']}   (login URL is the same)")
    click.echo(f"              client_id={sf['client_id']} client_secret={sf['client_secret']}")
    click.echo(f"              username={sf['username']} password={sf['password']}")
    click.echo(f"              access token (no login needed): {sf['access_token']}")
    click.echo(f"              JWT bearer private key: {sf['jwt_private_key_path']}")
    click.echo(f"  HubSpot     {hs['base_url']}")
    click.echo(f"              private app token: {hs['access_token']}")
    click.echo(f"  TLS CA      {info['ca_path']}   (trust this file, e.g. REQUESTS_CA_BUNDLE)")
    click.echo(f"  Admin       {sf['admin_url']}/calls, {hs['admin_url']}/faults, ...")


# ---- sync, status, demo ------------------------------------------------------------------------
CONFIG_OPTION = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CRMSYNC_CONFIG",
    default="config/crmsync.yaml",
    show_default=True,
    help="Service configuration file (or set CRMSYNC_CONFIG).",
)


@main.command()
@CONFIG_OPTION
@click.option(
    "--connection",
    "connections",
    multiple=True,
    metavar="NAME",
    help="Sync only this connection (repeatable). Default: all of them.",
)
@click.option("--full", is_flag=True, help="Re-read everything and restart the cursor.")
@click.option(
    "--reconcile",
    is_flag=True,
    help="Re-read everything to catch hard deletes and formula fields; the cursor "
    "stays where it is.",
)
def sync(config_path: Path, connections: tuple[str, ...], full: bool, reconcile: bool) -> None:
    """Pull opportunities and deals from the CRMs into crmsync's store.

    Incremental by default: only what changed since the last sync. Exit code 4 means a sync
    stopped before spending the configured share of the daily API quota; it resumes next run.
    """
    from crmsync.app.runner import run_syncs

    summaries = run_syncs(
        config_path, connections, full=full, reconcile=reconcile, progress=_progress_line()
    )
    _print_summaries(summaries)
    if any(s.status == "stopped" for s in summaries):
        sys.exit(4)


@main.command()
@CONFIG_OPTION
def status(config_path: Path) -> None:
    """Show each connection's cursor, last sync and record counts, and each workflow's last
    scheduled run."""
    from crmsync.app.runner import connection_status

    connections, workflows = connection_status(config_path)
    for row in connections:
        click.echo(
            f"{row['connection']}: records={row['records']} deleted={row['deleted']} "
            f"set_aside={row['set_aside']} cursor={row['cursor'] or '-'}"
        )
        last = row["last_run"]
        if last:
            click.echo(
                f"  last sync: {last['kind']} {last['status']} at {last['finished_at']} "
                f"fetched={last['fetched']} api_calls={last['api_calls']}"
                + (f" error={last['error']}" if last.get("error") else "")
            )
        else:
            click.echo("  never synced")
    for run in workflows:
        click.echo(
            f"workflow {run['workflow']}: last scheduled run {run['status']} "
            f"at {run['finished_at']}"
        )


@main.command()
@CONFIG_OPTION
def run(config_path: Path) -> None:
    """Run the background service: scheduled syncs and workflows, until SIGTERM or Ctrl-C.

    Serves /healthz, /readyz and /metrics (config `service.http`). Several workers may share
    one database: one runs the jobs, the others stand by and take over if it stops.
    """
    from crmsync.service.worker import run_service

    sys.exit(run_service(config_path))


@main.command()
@click.option(
    "--opportunities",
    "-n",
    default=10_000,
    show_default=True,
    type=click.IntRange(0),
    help="Opportunities (and deals) in the sandbox.",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed for the sandbox data.")
@click.option(
    "--config",
    "-c",
    "config_path",
    default="config/sandbox.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The sandbox configuration (run from the crmsync folder).",
)
def demo(opportunities: int, seed: int, config_path: Path) -> None:
    """Start a sandbox Salesforce and HubSpot and run crmsync's main job against them.

    The store is left in var/ so that `crmsync status -c config/sandbox.yaml` and later
    commands can look at it.
    """
    from crmsync.demo import run_demo
    from crmsync.logs import configure

    parent = click.get_current_context().parent
    if parent is not None and parent.get_parameter_source("log_level") in (
        click.core.ParameterSource.DEFAULT,
        None,
    ):
        configure("warning")  # the demo prints its own summary; events only when asked for

    run_demo(
        config_path,
        opportunities=opportunities,
        seed=seed,
        echo=click.echo,
        progress=_progress_line(),
    )


# ---- workflows ---------------------------------------------------------------------------------
@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CRMSYNC_CONFIG",
    help="Also check the service config, and the workflows against its connections.",
)
def validate(paths: tuple[Path, ...], config_path: Path | None) -> None:
    """Check workflow files (default: the workflows folder) and the service configuration.

    Errors name the file, line and column; the exit code is 2 when anything is wrong.
    """
    from crmsync.app.plan import mappings
    from crmsync.config import load_config
    from crmsync.workflows.load import load_workflows

    maps = None
    targets = list(paths)
    if config_path is not None:
        config = load_config(config_path)
        maps = mappings(config)
        click.echo(f"ok: {config_path} ({len(config.connections)} connections)")
        targets = targets or [config.workflow_dir()]
    for loaded in load_workflows(targets or [Path("workflows")], connections=maps):
        wf = loaded.workflow
        click.echo(
            f"ok: {loaded.path} (workflow {wf.name}: {len(wf.rules)} rules, "
            f"{len(wf.examples)} examples, {wf.mode})"
        )
    if maps is None:
        click.echo("note: connections and flag fields were not checked; pass --config")


@main.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def test_command(paths: tuple[Path, ...]) -> None:
    """Run the examples in workflow files and report like a test runner.

    Each example says which rules an opportunity should fire; exit code 1 when any example
    fires something else.
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
            click.echo(f"     expected: {', '.join(sorted(result.expected)) or 'nothing'}")
            click.echo(f"     fired:    {', '.join(sorted(result.fired)) or 'nothing'}")
            for rule, reasons in result.reasons.items():
                click.echo(f"       {rule}: {'; '.join(reasons)}")
    click.echo(f"{passed} passed, {failed} failed")
    if failed:
        sys.exit(1)


@main.command(name="plan")
@CONFIG_OPTION
@click.option(
    "--workflow",
    "workflows",
    multiple=True,
    metavar="NAME",
    help="Only this workflow (repeatable).",
)
@click.option(
    "--connection",
    "connections",
    multiple=True,
    metavar="NAME",
    help="Only this connection (repeatable).",
)
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
def plan_command(
    config_path: Path,
    workflows: tuple[str, ...],
    connections: tuple[str, ...],
    fmt: str,
    limit: int,
) -> None:
    """Preview what the workflows would do: which rules fire on which deals, why, and the
    flags and tasks that would follow. Nothing is written to any CRM."""
    from crmsync.app.plan import plan

    shown: dict[str, int] = {"opportunities": 0}
    last_key = {"key": ""}

    def table(f: Any) -> None:
        opp = f.opportunity
        if opp.key != last_key["key"]:
            last_key["key"] = opp.key
            shown["opportunities"] += 1
            if limit and shown["opportunities"] > limit:
                return
            amount = f"{opp.amount:,.0f}" if opp.amount is not None else "-"
            click.echo(
                f"{opp.key}  {opp.name!r}  owner={opp.owner_name or opp.owner_id or '-'}"
                f"  stage={opp.stage_canonical or opp.stage or '-'}  amount={amount}"
            )
        elif limit and shown["opportunities"] > limit:
            return
        click.echo(f"  [{f.workflow}] {f.rule_id}: {'; '.join(f.reasons)}")
        for a in f.actions:
            if a.kind == "flag":
                click.echo(f"      -> set {a.field} = {a.value}")
            else:
                remind = f", remind every {a.remind_every_days} days" if a.remind_every_days else ""
                click.echo(
                    f'      -> task for the owner: "{a.subject}" due {a.due_date} '
                    f"({a.priority}{remind})"
                )

    def jsonl(f: Any) -> None:
        click.echo(json.dumps(f.as_json()))

    summaries = plan(
        config_path,
        workflows=workflows,
        connections=connections,
        on_firing=table if fmt == "table" else jsonl,
    )
    if fmt == "json":
        for s in summaries:
            click.echo(
                json.dumps(
                    {
                        "summary": {
                            "workflow": s.workflow,
                            "connection": s.connection,
                            "evaluated": s.evaluated,
                            "in_scope": s.in_scope,
                            "firings": s.firings,
                            "opportunities_fired": s.opportunities_fired,
                            "by_rule": dict(s.by_rule),
                            "by_owner": dict(s.by_owner),
                        }
                    }
                )
            )
        return
    if limit and shown["opportunities"] > limit:
        click.echo(
            f"... and {shown['opportunities'] - limit} more opportunities "
            "(--limit 0 shows all, --format json for scripts)"
        )
    print_plan_summary(summaries)


def print_plan_summary(summaries: list[Any], owners: int = 10) -> None:
    """Rules fired per workflow and connection, and the owners with the most firings."""
    from collections import Counter

    click.echo("")
    for s in summaries:
        click.echo(
            f"{s.workflow} on {s.connection}: {s.in_scope} of {s.evaluated} opportunities "
            f"in scope, {s.opportunities_fired} with findings, {s.firings} rule firings"
        )
        for rule, n in s.by_rule.most_common():
            click.echo(f"  {rule:32s} {n:>6d}")
    total: Counter[str] = Counter()
    for s in summaries:
        total.update(s.by_owner)
    if total:
        click.echo(f"By owner (top {owners}):")
        for owner, n in total.most_common(owners):
            click.echo(f"  {owner:32s} {n:>6d}")


def _progress_line() -> Any:
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


def _print_summaries(summaries: list[Any]) -> None:
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
        if s.error:
            click.echo(f"  {s.error}")
        for message in s.messages:
            click.echo(f"  {message}")


from crmsync import cli_actions  # noqa: E402, F401  (registers apply, cycle and audit)

if __name__ == "__main__":  # `python -m crmsync.cli`: run the registered group of the real module
    from crmsync.cli import main as registered

    registered()
