"""The `crmsync` group: every command registered once, each with its help, runnable as a module."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from crmsync.cli import COMMANDS, main
from crmsync.cli.actions import parse_since
from crmsync.errors import InvalidInput

NAMES = {
    "apply",
    "audit",
    "cycle",
    "demo",
    "diff",
    "plan",
    "report",
    "run",
    "sandbox",
    "status",
    "sync",
    "test",
    "validate",
    "workflows",
}


def test_every_command_is_registered_once() -> None:
    assert set(main.commands) == NAMES
    assert len(COMMANDS) == len(NAMES)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_each_command_prints_its_help(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"], prog_name="crmsync")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: crmsync {name} [OPTIONS]")


def test_python_dash_m_runs_the_group() -> None:
    """`python -m crmsync.cli` and `python -m crmsync` are the `crmsync` command."""
    for module in ("crmsync.cli", "crmsync"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "crmsync, version 0.1.0"


def test_audit_since_takes_a_date_or_a_moment() -> None:
    assert parse_since(None) is None and parse_since("") is None
    assert parse_since("2026-11-20") == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_since("2026-11-20T08:30:00") == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    east = timezone(timedelta(hours=2))
    assert parse_since("2026-11-20T08:30:00+02:00") == datetime(2026, 11, 20, 8, 30, tzinfo=east)
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        parse_since("yesterday")


def test_the_sandbox_command_lags_search_like_hubspot_by_default() -> None:
    """`crmsync sandbox` is as strict as the library sandbox: HubSpot search lags writes."""
    from crmsync.sandbox.hubspot.portal import SEARCH_DELAY

    option = next(p for p in main.commands["sandbox"].params if p.name == "search_delay")
    assert option.default == SEARCH_DELAY > 0


def test_a_sandbox_that_does_not_stop_in_time_exits_anyway(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`crmsync sandbox` ends within its stop time even when a server never stops (a script
    waiting on its output must not hang); a prompt stop exits normally."""
    import importlib
    import threading

    command = importlib.import_module("crmsync.cli.sandbox")  # the module, not the command

    exits: list[int] = []
    monkeypatch.setattr(command.os, "kill", lambda pid, sig: exits.append(sig))
    never = threading.Event()

    class Stuck:
        def stop(self) -> None:
            never.wait()

    class Prompt:
        stopped = False

        def stop(self) -> None:
            self.stopped = True

    command._stop_within(Stuck(), 0.2)
    assert exits == [command.signal.SIGKILL]
    assert "did not stop in 0 s; exiting" in capsys.readouterr().err
    prompt = Prompt()
    command._stop_within(prompt, 5)
    assert prompt.stopped and exits == [command.signal.SIGKILL]
    never.set()
