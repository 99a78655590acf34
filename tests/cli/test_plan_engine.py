"""`crmsync plan --explain-engine` says where each rule runs; on both sandbox CRMs synced
through their connectors, the columnar engine plans what the per-deal engine plans."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.config import load_config, load_mapping
from crmsync.store import Store
from crmsync.workflows.load import load_workflow
from crmsync.workflows.plan import evaluate
from tests.cli.test_diff import SHIPPED, Synced, synced
from tests.conftest import NOW

__all__ = ["synced"]


def _plan(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["plan", *args], prog_name="crmsync")
    return result.exit_code, result.output


def test_explain_engine_names_where_each_rule_runs(synced: Synced, tmp_path: Path) -> None:
    code, out = _plan("-c", str(synced.config), "--explain-engine")
    assert code == 0, out
    lines = out.splitlines()
    for workflow in ("pipeline-hygiene", "stage-gates"):
        for connection in ("sf", "hs"):
            assert f"{workflow} on {connection}:" in lines
    assert "  scope: columnar" in lines
    assert "  no-recent-activity: columnar" in lines
    assert "  proposal-gate: columnar" in lines

    odd = tmp_path / "workflows"
    odd.mkdir()
    (odd / "odd.yaml").write_text(
        "name: odd\nrules:\n  - id: named-a\n    kind: custom\n"
        '    condition: name.startsWith("A")\n'
    )
    config = yaml.safe_load(synced.config.read_text())
    config["workflows"] = str(odd)
    path = tmp_path / "crmsync.yaml"
    path.write_text(yaml.safe_dump(config))
    code, out = _plan("-c", str(path), "--explain-engine", "--format", "json")
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["connection"] for r in rows} == {"sf", "hs"}
    assert all("named-a: per-deal (its condition)" in r["engine"] for r in rows)


def test_both_crms_plan_the_same_on_both_engines(synced: Synced) -> None:
    config = load_config(synced.config)
    with Store.open(synced.store_url) as store:
        for connection in config.connections:
            mapping = load_mapping(connection.mapping)
            for name in ("pipeline-hygiene", "stage-gates"):
                wf = load_workflow(SHIPPED / f"{name}.yaml")
                got: dict[str, list[str]] = {"auto": [], "per-deal": []}
                summaries = {}
                for engine, out in got.items():
                    summaries[engine] = evaluate(
                        wf,
                        store,
                        connection.name,
                        NOW,
                        mapping=mapping,
                        on_firing=lambda f, out=out: out.append(json.dumps(f.as_json())),
                        engine=engine,
                    )
                assert len(got["auto"]) > 20
                assert got["auto"] == got["per-deal"]
                assert dataclasses.astuple(summaries["auto"]) == dataclasses.astuple(
                    summaries["per-deal"]
                )
