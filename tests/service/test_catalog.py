"""Workflow files reloaded while the service runs: good edits apply, bad ones are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from crmsync.config import load_mapping
from crmsync.service.catalog import WorkflowCatalog
from crmsync.service.metrics import Metrics
from tests.service.support import metric

ROOT = Path(__file__).resolve().parents[2]

WORKFLOW = """\
name: {name}
mode: shadow
schedule: {{cron: "{cron}", timezone: UTC}}
rules:
  - id: big-deal
    kind: custom
    condition: amount != null && amount >= {threshold}
    title: A big deal
"""


def _write(
    folder: Path, file: str, name: str = "wf", threshold: str = "1000.0", cron: str = "0 7 * * *"
) -> Path:
    path = folder / file
    path.write_text(WORKFLOW.format(name=name, threshold=threshold, cron=cron), encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "workflows").mkdir()
    return tmp_path / "workflows"


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def catalog(tmp_path: Path, folder: Path, metrics: Metrics) -> WorkflowCatalog:
    (tmp_path / "snapshots").mkdir()
    maps = {"sf": load_mapping(ROOT / "connectors" / "salesforce.yaml")}
    return WorkflowCatalog(folder, maps, tmp_path / "snapshots", metrics)


def test_a_good_edit_replaces_the_version(folder: Path, catalog: WorkflowCatalog) -> None:
    """A valid change is picked up by the next refresh, as a new snapshot."""
    _write(folder, "wf.yaml")
    catalog.refresh()
    first = catalog.get("wf")
    assert first is not None and "1000.0" in first.snapshot.read_text()
    _write(folder, "wf.yaml", threshold="5000.0")
    assert not catalog.refresh()  # same name and schedule: no job to re-register
    second = catalog.get("wf")
    assert second is not None and second.digest != first.digest
    assert "5000.0" in second.snapshot.read_text()
    assert "1000.0" in first.snapshot.read_text()  # a run still using it is undisturbed


def test_a_bad_edit_keeps_the_last_good_version(
    folder: Path, catalog: WorkflowCatalog, metrics: Metrics
) -> None:
    """An invalid change is refused with an event naming the file and the error; the last
    good version stays in force, and the metrics count it once per bad version."""
    path = _write(folder, "wf.yaml")
    catalog.refresh()
    good = catalog.get("wf")
    path.write_text("name: wf\nrules: [\n", encoding="utf-8")
    with capture_logs() as logs:
        catalog.refresh()
        catalog.refresh()  # unchanged bad content: not reported again
    failures = [e for e in logs if e["event"] == "workflow.reload_failed"]
    assert len(failures) == 1
    assert failures[0]["file"] == str(path)
    assert str(path) in failures[0]["error"] and "snapshot" not in failures[0]["error"]
    assert failures[0]["kept_last_good"] is True
    assert catalog.get("wf") == good
    scraped = generate_latest(metrics.registry).decode()
    assert metric(scraped, "crmsync_workflow_reload_errors_total", file=str(path)) == 1
    assert metric(scraped, "crmsync_workflow_files_invalid") == 1
    _write(folder, "wf.yaml", threshold="7.0")  # fixed: applies, and the gauge clears
    catalog.refresh()
    fixed = catalog.get("wf")
    assert fixed is not None and "7.0" in fixed.snapshot.read_text()
    assert metric(generate_latest(metrics.registry).decode(), "crmsync_workflow_files_invalid") == 0


def test_a_semantic_mistake_is_refused_too(folder: Path, catalog: WorkflowCatalog) -> None:
    """A file that parses but does not validate (an unknown field in a condition) is refused."""
    path = _write(folder, "wf.yaml")
    catalog.refresh()
    path.write_text(
        WORKFLOW.format(name="wf", threshold="1000.0", cron="0 7 * * *").replace(
            "amount !=", "amont !="
        ),
        encoding="utf-8",
    )
    with capture_logs() as logs:
        catalog.refresh()
    assert [e["event"] for e in logs] == ["workflow.reload_failed"]
    version = catalog.get("wf")
    assert version is not None and "amount !=" in version.snapshot.read_text()


def test_new_removed_and_rescheduled_files_change_the_jobs(
    folder: Path, catalog: WorkflowCatalog
) -> None:
    """A refresh says when the set of workflows or a schedule changed."""
    _write(folder, "a.yaml", name="a")
    assert catalog.refresh()
    assert set(catalog.versions()) == {"a"}
    _write(folder, "b.yaml", name="b")
    assert catalog.refresh()
    assert set(catalog.versions()) == {"a", "b"}
    _write(folder, "b.yaml", name="b", cron="30 8 * * 1")
    assert catalog.refresh()
    version = catalog.get("b")
    assert version is not None and version.schedule is not None
    assert version.schedule.cron == "30 8 * * 1"
    (folder / "a.yaml").unlink()
    assert catalog.refresh()
    assert set(catalog.versions()) == {"b"}
    assert not catalog.refresh()


def test_a_duplicate_name_is_refused(folder: Path, catalog: WorkflowCatalog) -> None:
    """A second file using a taken workflow name is refused; the first keeps it."""
    first = _write(folder, "a.yaml", name="same")
    catalog.refresh()
    _write(folder, "b.yaml", name="same", threshold="1.0")
    with capture_logs() as logs:
        catalog.refresh()
    assert [e["event"] for e in logs] == ["workflow.reload_failed"]
    assert "also used by" in logs[0]["error"]
    version = catalog.get("same")
    assert version is not None and version.file == first
