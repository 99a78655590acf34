"""`crmsync workflows`: what is running, at a glance, read from the files, the config and the
store (never written)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from crmsync.app.overview import workflow_overview
from crmsync.cli import main
from crmsync.config import load_config
from crmsync.store import Store
from crmsync.store.outbox import (
    Episode,
    OutboxRow,
    PlanRecord,
    Transition,
    record_plan,
    rows_by_key,
    transition,
)
from crmsync.store.overview import WorkflowCounts, workflow_counts
from tests.app.test_modes import write_setup
from tests.cli.overview_data import LATER, seed


def _invoke(path: Path, *args: str) -> str:
    out = CliRunner().invoke(main, ["workflows", "-c", str(path), *args])
    assert out.exit_code == 0, out.output
    return out.output


def test_each_workflow_at_a_glance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mode and source, version (hash and normalized file), schedule with its next run in the
    workflow's time zone, the last run, findings, tasks and parked actions per connection."""
    path = write_setup(tmp_path)
    (tmp_path / "config").mkdir()
    moved = tmp_path / "config" / "crmsync.yaml"  # a config whose folder path has `..` in it
    moved.write_text(
        path.read_text(encoding="utf-8").replace(str(tmp_path / "workflows"), "../workflows"),
        encoding="utf-8",
    )
    with Store.open(load_config(moved).store.url) as store:
        seed(store)
    monkeypatch.chdir(tmp_path)
    digest = hashlib.sha256((tmp_path / "workflows" / "wf.yaml").read_bytes()).hexdigest()[:12]

    (data,) = [json.loads(x) for x in _invoke(moved, "--format", "json").splitlines()]
    assert data["name"] == "wf" and data["version"] == digest
    assert data["file"] == "workflows/wf.yaml"
    assert data["schedule"] == "0 7 * * 1-5 America/New_York"
    next_run = datetime.fromisoformat(data["next_run"])
    assert next_run > datetime.now(UTC)
    local = next_run.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (7, 0) and local.isoweekday() <= 5
    assert data["last_run"]["status"] == "ok"
    assert datetime.fromisoformat(data["last_run"]["finished_at"]) == LATER
    (hs,) = data["connections"]
    assert (hs["connection"], hs["mode"], hs["mode_source"]) == (
        "hs", "live", "config writeback.modes",
    )  # fmt: skip
    assert hs["counts"] == {
        "findings_open": 2,
        "findings_resolved": 1,
        "tasks_created": 4,
        "tasks_open": 2,
        "tasks_completed": 1,
        "actions_pending": 0,
        "actions_parked": 1,
    }

    table = _invoke(moved)
    assert f"wf  version {digest}  workflows/wf.yaml" in table
    assert "../" not in table
    assert "last run: ok at 2026-11-21 12:00:00 UTC" in table
    assert (
        "hs: live, from config writeback.modes; findings 2 open, 1 resolved; tasks 4 created, "
        "2 open, 1 completed; actions 0 pending, 1 parked"
    ) in table


def test_a_new_workflow_has_not_run(tmp_path: Path) -> None:
    """Before any run: its file's mode, no last run, every count zero."""
    path = write_setup(tmp_path, {})
    table = _invoke(path)
    assert "last run: never" in table
    assert "hs: shadow, from file; findings 0 open, 0 resolved; tasks 0 created" in table


def test_the_counts_read_every_workflow_and_connection(store: Store) -> None:
    """The store's counts on SQLite and PostgreSQL, `other` kept apart from `wf` although
    they share a rule id."""
    seed(store)
    counts = workflow_counts(store)
    assert counts["other", "hs"] == WorkflowCounts(findings_open=1, actions_pending=1)
    assert counts["wf", "hs"].tasks_open == 2


def test_it_writes_nothing(tmp_path: Path) -> None:
    """Reading the overview leaves the store as it was (no run recorded, no row planned)."""
    path = write_setup(tmp_path)
    config = load_config(path)
    with Store.open(config.store.url) as store:
        seed(store)
        before = (store.job_runs(), workflow_counts(store))
        workflow_overview(config, store)
        assert (store.job_runs(), workflow_counts(store)) == before


def test_a_mode_for_an_unknown_workflow_is_an_error(tmp_path: Path) -> None:
    """A typo in `writeback.modes` is reported as `apply` reports it (exit 2, one line)."""
    path = write_setup(tmp_path, {"modes": {"wf-typo": "live"}})
    out = CliRunner().invoke(main, ["workflows", "-c", str(path)])
    assert out.exit_code == 2
    assert out.output.strip() == (
        "crmsync: error: writeback.modes: no workflow named 'wf-typo' (known: wf)"
    )


def test_a_digest_of_two_workflows_is_open_for_the_one_that_created_it(store: Store) -> None:
    """An owner's digest gathers the findings of every workflow, but was created by one: it is
    never counted open where it was not counted created (the demo showed "tasks 398 created,
    831 open")."""
    from tests.cli.overview_data import LATER, NOW

    def finding(workflow: str, n: int) -> Episode:
        return Episode(
            workflow, "r", f"hs:{n}", "hs", str(n), "o1", "open", 1, NOW, NOW, task_key="dg"
        )

    digest = OutboxRow("dg", "hs", "wf", None, "hs:10", "10", "task.create", {"subject": "d"})
    record_plan(
        store, PlanRecord(episodes=[finding("wf", 10), finding("other", 11)], rows=[digest]), NOW
    )
    transition(
        store, rows_by_key(store, ["dg"]), [Transition("dg", "confirmed", crm_id="x")], LATER
    )
    counts = workflow_counts(store)
    assert (counts["wf", "hs"].tasks_created, counts["wf", "hs"].tasks_open) == (1, 1)
    assert (counts["other", "hs"].tasks_created, counts["other", "hs"].tasks_open) == (0, 0)


def test_a_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    """The others are shown, then the broken file's one-line error and exit 2 (the error alone
    was printed, when an operator most needs to see what is running)."""
    path = write_setup(tmp_path)
    (tmp_path / "workflows" / "zz.yaml").write_text("name: zz\nrules: nope\n", encoding="utf-8")
    out = CliRunner().invoke(main, ["workflows", "-c", str(path)])
    assert out.exit_code == 2
    assert out.stdout.startswith("wf  version ")
    assert "hs: live, from config writeback.modes;" in out.stdout
    (error,) = out.stderr.strip().splitlines()[-1:]
    assert error.startswith(f"crmsync: error: {tmp_path / 'workflows' / 'zz.yaml'}:2:8: rules:")
