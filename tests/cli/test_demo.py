"""The README's first command: `crmsync demo` syncs a sandbox of both CRMs into SQLite."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from crmsync.app.apply import apply
from crmsync.app.runner import raise_first_failure, run_syncs
from crmsync.cli.demo import run_demo
from crmsync.store import Store
from crmsync.workflows.load import load_workflows

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_syncs_both_crms_and_prints_the_summary(tmp_path: Path) -> None:
    """The demo starts the sandbox, syncs both CRMs, prints one line each, and leaves a store."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "connectors", tmp_path / "connectors")
    shutil.copytree(ROOT / "workflows", tmp_path / "workflows")
    config = tmp_path / "config" / "sandbox.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmsync.cli",
            "--log-level",
            "warning",
            "demo",
            "--opportunities",
            "400",
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    sf = next(line for line in lines if line.startswith("sandbox-sf: full ok"))
    hs = next(line for line in lines if line.startswith("sandbox-hs: full ok"))
    assert "inserted=400" in sf and "inserted=400" in hs
    assert (tmp_path / "var" / "sandbox" / "crmsync.db").is_file()
    assert "pipeline-hygiene on sandbox-sf: " in result.stdout  # the plan's summary follows
    assert "stage-gates on sandbox-hs: " in result.stdout
    assert "Firings by owner (top 10):" in result.stdout
    # the write-back: tasks created in both CRMs, then a second cycle that creates nothing
    first, second = result.stdout.split("A second cycle right away creates nothing twice:")
    created = [int(line.split("created=")[1].split()[0]) for line in first.splitlines()
               if line.startswith(("sandbox-sf: created=", "sandbox-hs: created="))]  # fmt: skip
    assert len(created) == 2 and min(created) > 0

    # the total line adds up the connections' lines, count by count, under the same names
    def counts(line: str) -> dict[str, str]:
        return dict(f.split("=") for f in line.split(": ", 1)[1].split("  ")[0].split())

    sends = [counts(line) for line in first.splitlines()
             if line.startswith(("sandbox-sf: created=", "sandbox-hs: created="))]  # fmt: skip
    total = counts(next(line for line in first.splitlines() if line.startswith("total: ")))
    sent = ("created", "updated", "resolved", "flagged", "superseded", "parked", "skipped", "left")
    for name in (*sent, "api_calls"):
        assert int(total[name]) == sum(int(s[name]) for s in sends), name
    assert int(total["flagged"]) > 0 and int(total["superseded"]) > 0
    # every planned write is accounted for (the audit's "skipped" flag writes are "superseded")
    assert int(total["planned"]) == sum(int(total[name]) for name in sent)
    assert (
        "total: planned=0 created=0 updated=0 resolved=0 flagged=0 superseded=0 parked=0 "
        "skipped=0 left=0 api_calls=0" in second
    )
    assert "A few, as reps see them:" in second and "  To: " in second
    status = subprocess.run(
        [sys.executable, "-m", "crmsync.cli", "status", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert status.returncode == 0, status.stderr
    assert "sandbox-sf: records=400" in status.stdout
    assert "sandbox-hs: records=400" in status.stdout
    plan = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmsync.cli",
            "--log-level",
            "warning",
            "plan",
            "-c",
            str(config),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert plan.returncode == 0, plan.stderr
    lines = [json.loads(line) for line in plan.stdout.splitlines()]
    firings = [line for line in lines if "rule" in line]
    summaries = [line["summary"] for line in lines if "summary" in line]
    assert firings and len(summaries) == 4  # two workflows on two connections
    assert sum(s["firings"] for s in summaries) == len(firings)
    for firing in firings:  # every fired rule says why, and tasks carry a due date
        assert firing["reasons"] and all(isinstance(r, str) and r for r in firing["reasons"])
        for action in firing["actions"]:
            assert action["kind"] in ("flag", "task")
            if action["kind"] == "task":
                assert action["subject"] and action["due_date"]


CEL = ("==", "&&", "||", "null", "!=")


def _rep_tasks(sb: Any) -> list[tuple[str, str, str, str, str]]:
    """(crm, owner, key, subject, body) of every task crmsync made, from the sandbox CRMs."""
    out = [
        (
            "sf",
            str(t["OwnerId"]),
            str(t["CRMSync_Key__c"]),
            str(t["Subject"]),
            str(t.get("Description") or ""),
        )
        for t in sb.salesforce.org.tables["Task"].values()
        if t.get("CRMSync_Key__c") and not t["IsDeleted"]
    ]
    for r in sb.hubspot.portal.objects["tasks"].values():
        p = r.properties
        if p.get("crmsync_key"):
            body = html.unescape(re.sub(r"<[^>]+>", " ", str(p.get("hs_task_body") or "")))
            owner = str(p.get("hubspot_owner_id"))
            out.append(("hs", owner, str(p["crmsync_key"]), str(p["hs_task_subject"]), body))
    return out


@pytest.mark.slow
def test_the_demos_first_live_cycle_is_a_few_plain_tasks_per_rep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the demo's own 10,000 + 10,000 deals, read from the sandbox CRMs after the demo's two
    cycles and a third: no owner has more than the budget (5) of tasks plus one digest, across
    both workflows; the later cycles create nothing; no subject or body shows CEL or a rule id."""
    for folder in ("config", "connectors", "workflows"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    rule_ids = {r.id for w in load_workflows([ROOT / "workflows"]) for r in w.workflow.rules}
    seen: dict[str, Any] = {}

    def inspect(sb: Any, config: Any) -> None:
        before = _rep_tasks(sb)
        with Store.open(config.store.url) as store:
            raise_first_failure(run_syncs(tmp_path / "config" / "sandbox.yaml", config=config))
            third = apply(config, store)
        seen.update(tasks=before, after=_rep_tasks(sb), third=third)

    run_demo(
        tmp_path / "config" / "sandbox.yaml",
        opportunities=10_000,
        seed=7,
        echo=lambda _line: None,
        inspect=inspect,
    )
    tasks = seen["tasks"]
    assert len(tasks) > 1000
    assert sorted(seen["after"]) == sorted(tasks)  # the third cycle made nothing new
    assert seen["third"].total("created") == 0
    per_owner = Counter((crm, owner) for crm, owner, _, _, _ in tasks)
    digests = Counter((crm, owner) for crm, owner, key, _, _ in tasks if key.startswith("digest-"))
    assert not digests or max(digests.values()) == 1
    assert max(per_owner[k] - digests[k] for k in per_owner) == 5  # the budget, used
    for _, _, _, subject, body in tasks:
        text = f"{subject}\n{body}"
        assert not [c for c in CEL if c in text], text
        assert not [r for r in rule_ids if re.search(rf"\b{re.escape(r)}\b", text)], text
