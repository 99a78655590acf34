"""What `crmsync sync` and `crmsync cycle` say and exit with when a CRM or the store fails:
one plain line per failure on stderr, no traceback, no secret, and a documented exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner, Result
from polars.exceptions import PanicException

from crmsync.cli import main
from crmsync.sandbox import Fault, Sandbox
from crmsync.store import Store
from tests.actions.world import config_dict
from tests.app.test_runner import CRMS, NAME, OTHER, outage
from tests.conftest import STORE_PASSWORD, make_sandbox
from tests.stores import PG_URL


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A small sandbox of its own."""
    sandbox = make_sandbox(opportunities=30)
    try:
        yield sandbox
    finally:
        sandbox.stop()


def write_config(folder: Path, sb: Sandbox, store_url: str, **changes: Any) -> Path:
    """A config file syncing both sandbox CRMs into `store_url`; `changes` replace auth values
    of a connection (`sf={...}`)."""
    (folder / "workflows").mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = config_dict(sb, store_url, folder / "workflows")
    for conn in data["connections"]:
        conn["auth"].update(changes.get(conn["name"], {}))
    path = folder / "crmsync.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def crmsync(*args: str) -> Result:
    return CliRunner().invoke(main, ["--log-level", "error", *args], prog_name="crmsync")


def error_lines(result: Result) -> list[str]:
    """The lines crmsync itself wrote to stderr (not log events)."""
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("crmsync:")]


@pytest.mark.parametrize("command", ["sync", "cycle"])
@pytest.mark.parametrize("down", CRMS)
def test_an_outage_of_one_crm_exits_5_after_syncing_the_other(
    tmp_path: Path, sb: Sandbox, store_url: str, down: str, command: str
) -> None:
    """One CRM answering 503: the other is synced, one line names the failed connection and
    the CRM's words, and the exit code says "retry later" (5), not "will not fix" (3)."""
    outage(sb, down)
    result = crmsync(command, "-c", str(write_config(tmp_path, sb, store_url)))
    assert result.exit_code == 5, result.output + result.stderr
    (line,) = error_lines(result)
    assert f" {NAME[down]}: " in line and "503" in line and "retry later" in line
    with Store.open(store_url) as store:
        assert store.count(NAME[OTHER[down]]) == 30
        assert store.runs(NAME[down])[0]["status"] == "failed"


def test_a_cycle_of_one_connection_leaves_the_other_alone(
    tmp_path: Path, sb: Sandbox, store_url: str
) -> None:
    """`cycle --connection` (as `sync` and `apply` take it): the CRM that is down is not
    asked, so the round of the other one goes well."""
    outage(sb, "hubspot")
    config = str(write_config(tmp_path, sb, store_url))
    result = crmsync("cycle", "-c", config, "--connection", NAME["salesforce"])
    assert result.exit_code == 0, result.output + result.stderr
    assert error_lines(result) == []
    with Store.open(store_url) as store:
        assert store.count(NAME["salesforce"]) == 30
        assert store.runs(NAME["hubspot"]) == []


def test_a_hubspot_answer_that_never_comes_times_out(
    tmp_path: Path, sb: Sandbox, store_url: str
) -> None:
    """`timeout_seconds` bounds each HubSpot call: a portal that keeps quiet is a timeout,
    retried, then "retry later" (exit 5). Without it, the call waited for as long as the
    server did (an operator's stop waited 6 minutes for one)."""
    sb.hubspot.faults.add(Fault("slow", endpoint="*", delay=5, times=None))
    path = write_config(tmp_path, sb, store_url)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for conn in data["connections"]:
        conn["sync"] = {"timeout_seconds": 0.3, "max_retries": 1, "retry_base_seconds": 0}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = crmsync("sync", "-c", str(path), "--connection", "hs")
    assert result.exit_code == 5, result.output + result.stderr
    (line,) = error_lines(result)
    assert " hs: " in line and "timed out (no answer within timeout_seconds) (127.0.0.1:" in line
    assert "retry later" in line
    assert sum(sb.hubspot.calls.counts().values()) == 2  # the call and its one retry


def test_a_refusal_wins_over_an_outage(tmp_path: Path, sb: Sandbox, store_url: str) -> None:
    """Salesforce refuses the credentials and HubSpot is down: both are reported, one line
    each, and the exit code is the refusal's (3): retrying alone will not fix it."""
    outage(sb, "hubspot")
    config = write_config(tmp_path, sb, store_url, sf={"client_secret": "wrong"})
    result = crmsync("sync", "-c", str(config))
    assert result.exit_code == 3, result.output + result.stderr
    lines = error_lines(result)
    assert len(lines) == 2
    assert " sf: " in lines[0] and "login refused" in lines[0]
    assert " hs: " in lines[1] and "503" in lines[1]


def test_a_quota_stop_and_an_outage_exit_5(tmp_path: Path, sb: Sandbox, store_url: str) -> None:
    """A quota stop (4) and an outage (5) together: the outage's code, the stronger."""
    outage(sb, "salesforce")
    sb.hubspot.faults.add(Fault("daily_limit", endpoint=LISTING_HS))
    result = crmsync("sync", "-c", str(write_config(tmp_path, sb, store_url)))
    assert result.exit_code == 5, result.output + result.stderr


LISTING_HS = "deals.list"


# ---- runs never left running; the store's outage is not a configuration mistake -------------


@pytest.mark.parametrize(
    ("raised", "code", "status", "said"),
    [
        (KeyboardInterrupt(), 130, "stopped", "interrupted"),
        (OverflowError("int too large to convert to float"), 1, "failed", "OverflowError"),
        (PanicException("index out of bounds"), 1, "failed", "PanicException"),
    ],
    ids=["ctrl-c", "crash", "a-rust-library-panics"],
)
def test_a_foreign_exception_ends_the_run_and_prints_one_line(
    tmp_path: Path,
    sb: Sandbox,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    raised: BaseException,
    code: int,
    status: str,
    said: str,
) -> None:
    """Ctrl-C or a crash while a page is stored: the run ends `stopped` or `failed` (never
    `running`), the CLI prints one line without a traceback and exits 130 or 1."""
    config = write_config(tmp_path, sb, store_url)

    def boom(*_args: object, **_kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(Store, "apply_batch", boom)
    result = crmsync("sync", "-c", str(config))
    assert result.exit_code == code, result.output + result.stderr
    (line,) = error_lines(result)
    assert said in line
    monkeypatch.undo()
    with Store.open(store_url) as store:
        run = store.runs("sf")[0]
    assert run["status"] == status and said in run["error"]
    status_output = crmsync("status", "-c", str(config)).output
    assert "running" not in status_output


def test_an_unreachable_store_exits_6_without_its_password(tmp_path: Path, sb: Sandbox) -> None:
    """A PostgreSQL server that does not answer: retry later (6), one line, password hidden."""
    url = f"postgresql+psycopg://alice:{STORE_PASSWORD}@127.0.0.1:1/crm"
    result = crmsync("sync", "-c", str(write_config(tmp_path, sb, url)))
    assert result.exit_code == 6, result.output + result.stderr
    (line,) = error_lines(result)
    assert "alice:***@127.0.0.1:1" in line and STORE_PASSWORD not in result.stderr + result.output


def test_a_malformed_store_url_stays_a_configuration_mistake(tmp_path: Path, sb: Sandbox) -> None:
    """A store URL that is not a URL is the config's fault: exit 2."""
    result = crmsync("sync", "-c", str(write_config(tmp_path, sb, "just some words")))
    assert result.exit_code == 2, result.output + result.stderr
    (line,) = error_lines(result)
    assert "store.url" in line


def test_the_store_going_away_mid_run_exits_6(
    tmp_path: Path, sb: Sandbox, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL drops crmsync's connections after the first page: exit 6 (retry later), one
    line naming the store without its password, not 2 (a configuration mistake)."""
    app = f"crmsync-outage-{uuid.uuid4().hex[:8]}"
    url = sa.make_url(pg_url).update_query_dict({"application_name": app}, append=True)
    store_url = url.render_as_string(hide_password=False)
    admin = sa.make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)

    def cut(_summary: object) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (app,),
            )

    monkeypatch.setattr(sys.modules["crmsync.cli.sync"], "progress_line", lambda: cut)
    result = crmsync("sync", "-c", str(write_config(tmp_path, sb, store_url)))
    assert result.exit_code == 6, result.output + result.stderr
    (line,) = error_lines(result)
    assert "store" in line and "retry later" in line
    assert STORE_PASSWORD not in result.stderr + result.output


@pytest.mark.slow
def test_ctrl_c_in_a_real_process(tmp_path: Path, sb: Sandbox, store_url: str) -> None:
    """SIGINT to a `crmsync sync` waiting on the CRM: one line, exit 130, the run `stopped`."""
    sb.salesforce.faults.add(Fault("slow", endpoint="query", delay=8))
    config = write_config(tmp_path, sb, store_url)
    with Store.open(store_url):
        pass  # migrated before the process starts, so the wait below is for the CRM only
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmsync.cli", "--log-format", "json", "sync", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # a shell's background job starts with SIGINT ignored, and Python keeps it so: give the
        # child the default an operator's terminal gives it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while sb.salesforce.calls.counts().get("query", 0) == 0:
            assert time.monotonic() < deadline and proc.poll() is None, "no query came"
            time.sleep(0.05)
        time.sleep(0.3)  # the process is waiting for the slow answer
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("crmsync:")]
    assert len(lines) == 1 and "interrupted" in lines[0]
    with Store.open(store_url) as store:
        assert store.runs("sf")[0]["status"] == "stopped"


SHIPPED = Path(__file__).resolve().parents[2] / "workflows"


def test_a_closed_pipe_ends_quietly() -> None:
    """`crmsync ... | head`: when the reader goes away, crmsync stops with the shell's code for
    SIGPIPE (141) and says nothing, instead of reporting a bug."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmsync.cli", "validate", str(SHIPPED)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the child has written a line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""
