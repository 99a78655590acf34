"""`crmsync diff`: two versions of a shipped workflow compared over a synced sandbox store (both
CRMs): counts checked against a direct computation from the stored deals, read-only, and bad
input one line with exit code 2."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from crmsync.app.factory import build_connector
from crmsync.app.sync import sync
from crmsync.cli import main
from crmsync.store import Store
from tests.actions.world import config_dict, config_for
from tests.conftest import NOW, make_sandbox

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "workflows"
HYGIENE = SHIPPED / "pipeline-hygiene.yaml"
AT = NOW.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Synced:
    config: Path
    store_url: str
    tmp: Path


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """Both sandbox CRMs (400 deals each) synced into a SQLite store, and a config file."""
    tmp = tmp_path_factory.mktemp("diff")
    url = f"sqlite:///{tmp / 'crmsync.db'}"
    sb = make_sandbox(400)
    try:
        config = config_for(sb, url, SHIPPED)
        store = Store.open(url)
        try:
            for connection in config.connections:
                connector = build_connector(connection)
                try:
                    sync(store, connector)
                finally:
                    connector.close()
        finally:
            store.close()
        path = tmp / "crmsync.yaml"
        path.write_text(yaml.safe_dump(config_dict(sb, url, SHIPPED)))
        yield Synced(path, url, tmp)
    finally:
        sb.stop()


def _edited(tmp: Path, old: str, new: str, name: str) -> Path:
    text = HYGIENE.read_text()
    assert text.count(old) == 1, old
    path = tmp / name
    path.write_text(text.replace(old, new))
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["diff", *args], prog_name="crmsync")
    return result.exit_code, result.output


def _idle_between(store_url: str, low: int, high: int) -> dict[str, int]:
    """Per connection, the open, in-scope deals (amount unknown or >= 1000) whose completed
    days without activity (since the last activity, else creation) are > low and <= high."""
    out: dict[str, int] = {}
    store = Store.open(store_url)
    try:
        for connection in ("sf", "hs"):
            n = 0
            for opp in store.iter_opportunities(connection):
                if opp.is_closed or (opp.amount is not None and opp.amount < 1000):
                    continue
                since = opp.last_activity_at or opp.created_at
                if since is None:
                    continue
                days = math.floor(max((NOW - since).total_seconds(), 0.0) / 86400)
                if low < days <= high:
                    n += 1
            out[connection] = n
    finally:
        store.close()
    return out


def test_raising_the_no_activity_limit_counts_the_deals_that_stop_firing(synced: Synced) -> None:
    """14 -> 21 days: exactly the deals idle 15..21 completed days stop firing, nothing starts,
    on both connections; the table and the JSON say the same counts."""
    new = _edited(synced.tmp, "    days: 14\n", "    days: 21\n", "hygiene-21.yaml")
    expected = _idle_between(synced.store_url, 14, 21)
    assert all(n > 0 for n in expected.values()), expected  # the data exercise the change

    code, out = _run(
        str(HYGIENE), str(new), "-c", str(synced.config), "--now", AT, "--format", "json"
    )
    assert code == 0, out
    report = json.loads(out)
    by_connection = {
        c["connection"]: {r["rule"]: r for r in c["rules"]} for c in report["connections"]
    }
    for connection, count in expected.items():
        rule = by_connection[connection]["no-recent-activity"]
        assert (rule["stop"], rule["start"], rule["change"]) == (count, 0, 0), connection
        assert rule["firings"]["old"] - rule["firings"]["new"] == count
        assert len(rule["examples"]["stop"]) == min(5, count)
        others = [
            r for r in by_connection[connection].values() if r["rule"] != "no-recent-activity"
        ]
        assert len(others) == 12 and all(
            r["stop"] == r["start"] == r["change"] == 0 for r in others
        )
    assert report["totals"] == {
        "stop": sum(expected.values()),
        "start": 0,
        "change": 0,
        "undecided": 0,
    }

    code, out = _run(
        str(HYGIENE), str(new), "-c", str(synced.config), "--now", AT, "--examples", "2"
    )
    assert code == 0, out
    for connection in expected:
        assert f"connection {connection}:" in out
    lines = out.splitlines()
    stops = [ln for ln in lines if ln.strip().startswith("no-recent-activity:")]
    assert [ln.split("firings: ")[1] for ln in stops] == [
        f"{expected[c]} stop firing, 0 start firing, 0 change action" for c in ("sf", "hs")
    ]
    assert sum(1 for ln in lines if ln.startswith("    stop ")) == 4  # 2 examples a connection
    assert (
        lines[-1] == f"total: {sum(expected.values())} stop firing, 0 start firing, 0 change action"
    )


def test_a_condition_that_fails_where_the_rule_fired_is_undecided_not_a_stop(
    synced: Synced,
) -> None:
    """The new condition fails on exactly the deals the rule fired on (CEL's && drops the error
    where the rest is false): those are undecided, as apply keeps their findings open, not
    "stop firing"; the table says what that means."""
    rule = "big-deal-late-stage-no-activity"
    old = 'condition: amount != null && amount >= 100000.0 && stage_canonical == "negotiation"'
    new = _edited(synced.tmp, old, old.replace(": ", ": int(name) > 0 && ", 1), "broken.yaml")
    args = ["diff", str(HYGIENE), str(new), "-c", str(synced.config), "--now", AT]
    result = CliRunner().invoke(main, [*args, "--format", "json"], prog_name="crmsync")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the log's plan.condition_failed goes to stderr
    found = [r for c in report["connections"] for r in c["rules"] if r["rule"] == rule]
    assert len(found) == 2 and sum(r["firings"]["old"] for r in found) > 0
    for r in found:
        assert (r["stop"], r["undecided"]) == (0, r["firings"]["old"])
    assert report["totals"]["undecided"] == sum(r["firings"]["old"] for r in found)
    assert report["totals"]["stop"] == 0

    result = CliRunner().invoke(main, args, prog_name="crmsync")
    assert result.exit_code == 0, result.output
    n = report["totals"]["undecided"]
    lines = result.stdout.splitlines()
    assert lines[-2].endswith(f", {n} undecided")
    assert lines[-1].startswith(f"{n} undecided: the new version's condition")
    assert "plan.condition_failed" in result.stderr


def test_where_the_scope_fails_a_removed_rule_still_stops(synced: Synced) -> None:
    """The new version's scope condition fails on (nearly) every deal and a rule is taken out:
    the kept rules' firings are undecided, the removed rule's firings stop, as apply does."""
    text = HYGIENE.read_text()
    start = text.index("  - id: no-next-step")
    end = text.index("  - id: next-step-stale")
    scope = "condition: amount == null || amount >= 1000.0"
    broken = text[:start] + text[end:]
    broken = broken[: broken.index("\nexamples:")] + "\n"  # its examples name the rule
    broken = broken.replace(scope, "condition: int(name) > 0", 1)
    assert broken.count("int(name)") == 1 and "  - id: no-next-step" not in broken
    new = synced.tmp / "scope-broken.yaml"
    new.write_text(broken)
    args = ["diff", str(HYGIENE), str(new), "-c", str(synced.config), "--now", AT]
    result = CliRunner().invoke(main, [*args, "--format", "json"], prog_name="crmsync")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for c in report["connections"]:
        rules = {r["rule"]: r for r in c["rules"]}
        gone = rules["no-next-step"]
        assert gone["firings"]["old"] > 0 and gone["stop"] == gone["firings"]["old"]
        assert gone["undecided"] == 0
        kept = [r for r in rules.values() if r["rule"] != "no-next-step"]
        assert sum(r["undecided"] for r in kept) > 0
        assert all(r["stop"] == 0 for r in kept)


def test_a_changed_task_is_a_change_of_action_not_a_start_or_stop(synced: Synced) -> None:
    """A new priority and due date change the action of every firing of that rule, and each
    example shows the old and the new value."""
    new = _edited(
        synced.tmp,
        "        due_in_business_days: 1\n        priority: high\n",
        "        due_in_business_days: 4\n        priority: normal\n",
        "hygiene-priority.yaml",
    )
    code, out = _run(
        str(HYGIENE), str(new), "-c", str(synced.config), "--now", AT, "--format", "json"
    )
    assert code == 0, out
    for c in json.loads(out)["connections"]:
        rule = next(r for r in c["rules"] if r["rule"] == "close-date-past")
        assert rule["firings"]["old"] > 0
        assert (rule["stop"], rule["start"]) == (0, 0)
        assert rule["change"] == rule["firings"]["old"]
        n = rule["change"]
        assert rule["changed_parts"] == {"task.priority": n, "task.due_date": n}
        parts = rule["examples"]["change"][0]["parts"]
        assert parts["task.priority"] == {"old": "high", "new": "normal"}


def test_diff_writes_nothing_to_the_store(synced: Synced) -> None:
    """The store file is byte for byte the same after a diff."""
    db = Path(synced.store_url.removeprefix("sqlite:///"))
    before = db.read_bytes()
    new = _edited(synced.tmp, "    days: 14\n", "    days: 30\n", "hygiene-30.yaml")
    code, out = _run(str(HYGIENE), str(new), "-c", str(synced.config), "--now", AT)
    assert code == 0, out
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    days: 14\n", "    days: fourteen\n", "hygiene-bad.yaml:"),
        ("    check: no_activity\n", "    check: no_activty\n", "no_activty"),
    ],
)
def test_an_invalid_file_is_one_line_and_exit_2(
    synced: Synced, old: str, new: str, message: str
) -> None:
    """A mistake in either file stops the diff before any evaluation: one line, exit code 2."""
    bad = _edited(synced.tmp, old, new, "hygiene-bad.yaml")
    for args in ((str(HYGIENE), str(bad)), (str(bad), str(HYGIENE))):
        result = CliRunner().invoke(
            main, ["diff", *args, "-c", str(synced.config)], prog_name="crmsync"
        )
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        err = result.output.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("crmsync: error: "), err
        assert message in err[0]


def test_two_different_workflows_are_said_to_be_so(synced: Synced) -> None:
    """Comparing stage-gates with pipeline-hygiene is allowed, but the table says what it is."""
    code, out = _run(
        str(SHIPPED / "stage-gates.yaml"), str(HYGIENE), "-c", str(synced.config), "--now", AT
    )
    assert code == 0, out
    assert out.splitlines()[1].startswith(
        "note: stage-gates and pipeline-hygiene are two workflows, not two versions of one"
    )
    code, out = _run(str(HYGIENE), str(HYGIENE), "-c", str(synced.config), "--now", AT)
    assert code == 0 and "note:" not in out
