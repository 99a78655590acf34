"""One answer to "is it live?": validate, plan, apply, the service's log events and metrics,
`status` and `crmsync workflows` all show a workflow's effective mode and where it comes from."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from crmsync.app.apply import apply
from crmsync.app.modes import Mode, effective_mode
from crmsync.app.plan import mappings
from crmsync.cli import main
from crmsync.config import load_config
from crmsync.service.catalog import WorkflowCatalog
from crmsync.service.jobs import JobContext
from crmsync.service.metrics import Metrics
from crmsync.service.wrappers import JobRunner
from crmsync.store import Store
from crmsync.workflows.load import load_workflow

ROOT = Path(__file__).resolve().parents[2]

WORKFLOW = """\
name: wf
mode: shadow
schedule: {cron: "0 7 * * 1-5", timezone: America/New_York}
rules:
  - id: big-deal
    kind: custom
    condition: amount != null && amount >= 1000.0
    title: A big deal
"""


def write_setup(tmp_path: Path, writeback: dict[str, Any] | None = None) -> Path:
    """A config (SQLite store, one HubSpot connection) and a folder with one shadow workflow."""
    (tmp_path / "workflows").mkdir(exist_ok=True)
    (tmp_path / "workflows" / "wf.yaml").write_text(WORKFLOW, encoding="utf-8")
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        "workflows": str(tmp_path / "workflows"),
        "connections": [
            {
                "name": "hs",
                "type": "hubspot",
                "mapping": str(ROOT / "connectors" / "hubspot.yaml"),
                "auth": {
                    "method": "private_app",
                    "access_token": "token",
                    "base_url": "http://127.0.0.1:9",
                },
            }
        ],
        "writeback": writeback if writeback is not None else {"modes": {"wf": "live"}},
    }
    path = tmp_path / "crmsync.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The issue's case: the file says shadow, the config's `writeback.modes` says live."""
    return write_setup(tmp_path)


def test_effective_mode_and_its_source(tmp_path: Path) -> None:
    """The file, then `writeback.modes`, then the dry-run switches decide, each named."""
    path = write_setup(tmp_path, {})
    config = load_config(path)
    wf = load_workflow(tmp_path / "workflows" / "wf.yaml")
    assert effective_mode(None, wf) == Mode("shadow", "file")
    assert effective_mode(config, wf) == Mode("shadow", "file")
    config = load_config(write_setup(tmp_path, {"modes": {"wf": "live"}}))
    assert effective_mode(config, wf, "hs") == Mode("live", "config writeback.modes")
    assert str(effective_mode(config, wf)) == "live, from config writeback.modes"
    assert effective_mode(config, wf, dry_run=True) == Mode("dry-run", "--dry-run")
    config = load_config(write_setup(tmp_path, {"modes": {"wf": "live"}, "dry_run": True}))
    assert effective_mode(config, wf) == Mode("dry-run", "config writeback.dry_run")


def test_validate_plan_apply_and_the_service_agree(config_path: Path, tmp_path: Path) -> None:
    """With the file saying shadow and the config live, every view says live, from the
    config: validate, status, workflows, plan (table and JSON), apply's `apply.planned`, the
    service's `workflow.loaded` and `job.finished`, and the `crmsync_workflow_mode` metric."""
    expected = {"mode": "live", "mode_source": "config writeback.modes"}
    runner = CliRunner()
    out = runner.invoke(main, ["validate", "-c", str(config_path)])
    assert out.exit_code == 0, out.output
    assert "mode live, from config writeback.modes" in out.output

    out = runner.invoke(main, ["status", "-c", str(config_path)])
    assert out.exit_code == 0, out.output
    assert "  wf: live, from config writeback.modes (on hs)" in out.output
    out = runner.invoke(main, ["workflows", "-c", str(config_path)])
    assert out.exit_code == 0, out.output
    assert "hs: live, from config writeback.modes;" in out.output

    Store.open(load_config(config_path).store.url).close()  # as the first sync makes it
    out = runner.invoke(main, ["plan", "-c", str(config_path)])
    assert out.exit_code == 0, out.output
    assert "wf on hs (live, from config writeback.modes):" in out.output
    out = runner.invoke(main, ["plan", "-c", str(config_path), "--format", "json"])
    assert out.exit_code == 0, out.output
    (summary,) = [json.loads(line)["summary"] for line in out.output.splitlines()]
    assert {k: summary[k] for k in expected} == expected
    out = runner.invoke(main, ["apply", "-c", str(config_path), "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "wf on hs (dry-run, from --dry-run): " in out.output
    assert "total: nothing recorded or sent (shadow or dry-run; the plans are above)" in out.output

    config = load_config(config_path)
    with Store.open(config.store.url) as store, capture_logs() as logs:
        report = apply(config, store)
        (planned,) = [e for e in logs if e["event"] == "apply.planned"]
        assert {k: planned[k] for k in expected} == expected
        assert [(w.mode, w.mode_source) for w in report.workflows] == [tuple(expected.values())]

        (tmp_path / "snapshots").mkdir()
        metrics = Metrics()
        catalog = WorkflowCatalog(
            config.workflow_dir(),
            mappings(config),
            tmp_path / "snapshots",
            metrics,
            mode_of=functools.partial(effective_mode, config),
        )
        catalog.refresh()
        ctx = JobContext(config, config_path, store, lambda: False)
        JobRunner(ctx, catalog, metrics, lambda: None).workflow_job("wf")
    (loaded,) = [e for e in logs if e["event"] == "workflow.loaded"]
    assert {k: loaded[k] for k in expected} == expected
    (finished,) = [e for e in logs if e["event"] == "job.finished"]
    assert {k: finished[k] for k in expected} == expected
    text = generate_latest(metrics.registry).decode()
    assert (
        'crmsync_workflow_mode{mode="live",source="config writeback.modes",workflow="wf"} 1.0'
        in text
    )


def test_the_metric_follows_a_change_of_mode(tmp_path: Path) -> None:
    """A workflow's mode series is replaced, not added to, when its mode changes."""
    metrics = Metrics()
    metrics.set_mode("wf", "shadow", "file")
    metrics.set_mode("wf", "live", "file")
    text = generate_latest(metrics.registry).decode()
    assert 'mode="shadow"' not in text and 'mode="live"' in text


def test_validate_refuses_a_mode_for_no_workflow(tmp_path: Path) -> None:
    """`writeback.modes` naming no workflow is a mistake `validate -c` reports, as apply does."""
    path = write_setup(tmp_path, {"modes": {"wf": "live", "wf-typo": "live"}})
    out = CliRunner().invoke(main, ["validate", "-c", str(path)])
    assert out.exit_code == 2
    assert out.stderr.strip().splitlines() == [
        f"crmsync: error: {path}: writeback.modes: no workflow named 'wf-typo' (known: wf)"
    ]
