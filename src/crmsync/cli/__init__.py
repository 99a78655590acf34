"""The `crmsync` command: what RevOps and admins run.

This module builds the command group and adds the commands of the modules beside it, one
module per group of commands; they never import this one. Output that several commands share
is in `format`, shared options in `options`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from crmsync import __version__
from crmsync.cli.actions import apply_command, audit, cycle
from crmsync.cli.demo import demo
from crmsync.cli.diff import diff_command
from crmsync.cli.overview import workflows_command
from crmsync.cli.report import report_command
from crmsync.cli.run import run
from crmsync.cli.sandbox import sandbox
from crmsync.cli.sync import status, sync
from crmsync.cli.workflows import plan_command, test_command, validate
from crmsync.errors import INTERRUPTED, CrmsyncError, crashes, describe

__all__ = ["COMMANDS", "Cli", "main"]

PIPE_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


class Cli(click.Group):
    """Turns every error into one line on stderr (no traceback, no secret) and an exit code:
    crmsync's own errors their `exit_code`, Ctrl-C 130, a closed pipe 141 (quietly), anything
    else 1 (its traceback is logged at debug level)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: usage errors, --help, --version
        except CrmsyncError as e:
            say(f"crmsync: error: {e}")
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            say("crmsync: interrupted (Ctrl-C); a sync resumes where it stopped on the next run")
            sys.exit(INTERRUPTED)
        except BrokenPipeError:
            # the reader went away (`crmsync plan | head`): stop quietly, as Unix tools do, with
            # the shell's code for SIGPIPE; stdout goes to /dev/null so exiting cannot fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(PIPE_CLOSED)
        except crashes() as e:  # a Rust library's panic (polars) too
            _crashed(e)


def _crashed(e: BaseException) -> None:
    import structlog

    structlog.get_logger("crmsync.cli").debug("crashed", exc_info=True)
    say(
        f"crmsync: error: unexpected {describe(e)} (a bug: please report it; "
        "--log-level debug shows where)"
    )
    sys.exit(1)


def say(line: str) -> None:
    """A message on stderr, any URL's password hidden."""
    from crmsync.store.errors import redact_url

    click.echo(redact_url(line), err=True)


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


COMMANDS = (
    sandbox,  # try it out
    sync,  # pull the CRMs into the store
    status,
    run,  # the background service
    demo,
    workflows_command,  # what is running
    validate,  # workflow files
    test_command,
    plan_command,
    diff_command,
    apply_command,  # write back
    cycle,
    audit,
    report_command,  # the pipeline review
)
for _command in COMMANDS:
    main.add_command(_command)
