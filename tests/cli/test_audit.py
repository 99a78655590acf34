"""`crmsync audit`: by workflow and rule (rule ids repeat across workflows), flag and digest
rows named, a per-workflow and per-rule summary, and CSV and JSON output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from crmsync.cli import main
from crmsync.config import load_config
from crmsync.store import Store
from crmsync.store.audit_log import audit_summary
from tests.app.test_modes import write_setup
from tests.cli.overview_data import seed


def _audit(path: Path, *args: str) -> str:
    out = CliRunner().invoke(main, ["audit", "-c", str(path), *args])
    assert out.exit_code == 0, out.output
    return out.output


def _seeded(tmp_path: Path) -> Path:
    path = write_setup(tmp_path)
    with Store.open(load_config(path).store.url) as store:
        seed(store)
    return path


def test_audit_by_workflow_and_rule(tmp_path: Path) -> None:
    """`--workflow` is an option (it was a usage error) and narrows `--rule` to that workflow."""
    path = _seeded(tmp_path)
    rows = [
        json.loads(x) for x in _audit(path, "--rule", "big-deal", "--format", "json").splitlines()
    ]
    assert {r["workflow"] for r in rows} == {"wf", "other"}
    only = _audit(path, "--workflow", "wf", "--rule", "big-deal", "--format", "json").splitlines()
    rows = [json.loads(x) for x in only]
    assert rows and {(r["workflow"], r["rule"]) for r in rows} == {("wf", "big-deal")}


def test_flag_and_digest_rows_are_named(tmp_path: Path) -> None:
    """A merged flag write shows as `wf/flags` and a digest as `wf/digest`, never `wf/-`; both
    can be asked for by that name."""
    path = _seeded(tmp_path)
    table = _audit(path, "--workflow", "wf")
    assert "/-" not in table
    assert "wf/flags" in table and "wf/digest" in table
    flags = _audit(path, "--rule", "flags")
    assert flags.count("\n") == 2  # f1 planned, then parked
    assert all("flag.write" in line for line in flags.splitlines())


def test_summary_per_workflow_and_rule(tmp_path: Path) -> None:
    """`--summary`: each workflow's total first, then its rules, with entries per state."""
    path = _seeded(tmp_path)
    lines = [json.loads(x) for x in _audit(path, "--summary", "--format", "json").splitlines()]
    got = {(s["workflow"], s["rule"]): (s["deals"], s["by_state"]) for s in lines}
    assert [(s["workflow"], s["rule"]) for s in lines] == [
        ("other", "(all)"), ("other", "big-deal"),
        ("wf", "(all)"), ("wf", "big-deal"), ("wf", "digest"), ("wf", "flags"), ("wf", "stale"),
    ]  # fmt: skip
    assert got["wf", "flags"] == (1, {"planned": 1, "parked": 1})
    assert got["wf", "stale"] == (1, {"planned": 2, "confirmed": 2})
    assert got["wf", "(all)"] == (3, {"planned": 6, "confirmed": 5, "parked": 1})
    assert got["other", "(all)"] == (1, {"planned": 1})
    table = _audit(path, "--summary", "--workflow", "wf")
    assert table.splitlines()[0].startswith("wf/(all)")
    assert "other" not in table


def test_csv(tmp_path: Path) -> None:
    """CSV with a header, for entries and for the summary."""
    path = _seeded(tmp_path)
    rows = list(csv.DictReader(io.StringIO(_audit(path, "--format", "csv"))))
    assert len(rows) == 13 and {r["rule"] for r in rows} == {"big-deal", "stale", "flags", "digest"}
    assert next(r for r in rows if r["state"] == "parked")["workflow"] == "wf"
    summary = list(csv.DictReader(io.StringIO(_audit(path, "--summary", "--format", "csv"))))
    wf = next(r for r in summary if r["workflow"] == "wf" and r["rule"] == "(all)")
    assert (wf["entries"], wf["confirmed"], wf["parked"]) == ("12", "5", "1")


def test_summary_on_each_store(store: Store) -> None:
    """The summary's SQL gives the same counts on SQLite and PostgreSQL."""
    seed(store)
    (total, big, *_) = audit_summary(store, workflow="wf")
    assert (total.rule, total.entries, total.deals) == ("(all)", 12, 3)
    assert (big.rule, big.by_state["confirmed"], big.deals) == ("big-deal", 2, 2)
    assert total.first_at is not None and total.first_at.tzinfo is not None


def test_an_unknown_workflow_is_a_mistake_not_an_empty_audit(tmp_path: Path) -> None:
    """A typo in --workflow said "no audit entries match" and exit 0; a workflow only the
    audit knows (removed from the files since) is still asked for."""
    path = _seeded(tmp_path)
    for args in (["--workflow", "wff"], ["--workflow", "wff", "--summary"]):
        out = CliRunner().invoke(main, ["audit", "-c", str(path), *args])
        assert out.exit_code == 2, out.output
        assert out.output.strip().splitlines() == [
            "crmsync: error: --workflow 'wff': no such workflow in the audit or the workflow "
            "files (did you mean 'wf'? known: other, wf)"
        ]
    assert "other" in _audit(path, "--workflow", "other", "--summary")  # not in the files
