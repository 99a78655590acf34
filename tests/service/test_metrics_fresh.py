"""/metrics of a worker that has just started, parsed with prometheus_client's parser: every
documented series is there before any run, counters at zero for every connection and workflow,
with Prometheus' conventions (no `job`/`instance` label of ours, one meaning per label)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.sandbox import Sandbox
from crmsync.service.metrics import SERIES, SYNC_STATUSES, WORKFLOW_STATUSES
from crmsync.service.metrics_store import ACTION_STATES
from tests.service.fresh import CONNECTIONS, WORKFLOWS, Sample, fresh_worker, samples, scrape

HISTOGRAMS = ("crmsync_sync_duration_seconds", "crmsync_workflow_duration_seconds")


@pytest.fixture
def scraped(tmp_path: Path, sandbox: Sandbox) -> Iterator[list[Sample]]:
    """The samples of a fresh worker's first scrape."""
    with fresh_worker(tmp_path, sandbox) as worker:
        yield samples(scrape(worker))


def _series(scraped: list[Sample], name: str) -> list[tuple[dict[str, str], float]]:
    if name in HISTOGRAMS:
        name += "_count"
    return [(labels, value) for n, labels, value in scraped if n == name]


def _values(scraped: list[Sample], name: str, **labels: str) -> list[float]:
    """The values of the samples called `name` with exactly these labels."""
    return [v for n, lab, v in scraped if n == name and lab == labels]


def test_every_documented_series_is_there_before_any_run(scraped: list[Sample]) -> None:
    """Each series of SERIES is in the first scrape, with exactly its documented labels."""
    for name, labels in SERIES.items():
        found = _series(scraped, name)
        assert found, f"{name} is missing from a fresh scrape"
        for got, _ in found:
            assert tuple(sorted(got)) == tuple(sorted(labels)), (name, got)


def test_no_undocumented_crmsync_series(scraped: list[Sample]) -> None:
    """Every crmsync_* sample belongs to a documented series."""
    suffixes = ("_bucket", "_count", "_sum")
    names = {n for n, _, _ in scraped if n.startswith("crmsync_")}
    bases = {next((n[: -len(s)] for s in suffixes if n.endswith(s) and n[: -len(s)] in SERIES), n)
             for n in names}  # fmt: skip
    assert bases == set(SERIES)


def test_counters_start_at_zero_for_every_connection_and_workflow(scraped: list[Sample]) -> None:
    """increase() has a series to work on before the first sync, failure or workflow run."""
    per_connection = {
        "crmsync_syncs_total": [{"status": s} for s in SYNC_STATUSES],
        "crmsync_api_calls_total": [{"kind": k} for k in ("sync", "writeback")],
        "crmsync_records_fetched_total": [{}],
        "crmsync_crm_rate_limited_total": [{}],
        "crmsync_crm_retries_total": [{}],
        "crmsync_sync_duration_seconds_count": [{}],
    }
    for connection in CONNECTIONS:
        for name, variants in per_connection.items():
            for extra in variants:
                want = {"connection": connection, **extra}
                assert _values(scraped, name, **want) == [0.0], (name, want)
    for workflow in WORKFLOWS:
        for status in WORKFLOW_STATUSES:
            want = {"workflow": workflow, "status": status}
            assert [
                v for n, lab, v in scraped if n == "crmsync_workflow_runs_total" and lab == want
            ] == [0.0]
        for connection in CONNECTIONS:
            pair = {"workflow": workflow, "connection": connection}
            assert [
                v for n, lab, v in scraped if n == "crmsync_tasks_created_total" and lab == pair
            ] == [0.0]
            states = {lab["state"]: v for n, lab, v in scraped
                      if n == "crmsync_actions" and lab.items() >= pair.items()}  # fmt: skip
            assert states == dict.fromkeys(ACTION_STATES, 0.0)


def test_unknown_gauges_are_nan_and_times_are_zero(scraped: list[Sample]) -> None:
    """A quota the CRM has not reported and firings of a workflow that has not run are NaN
    (no comparison matches them); a connection never synced shows 0; the stale window is set."""
    for connection in CONNECTIONS:
        for name in ("crmsync_api_quota_remaining", "crmsync_api_quota_limit"):
            (value,) = _values(scraped, name, connection=connection)
            assert math.isnan(value), name
        last = "crmsync_last_successful_sync_timestamp_seconds"
        assert _values(scraped, last, connection=connection) == [0.0]
        stale = _values(scraped, "crmsync_sync_stale_after_seconds", connection=connection)
        assert stale == [3.0]  # stale_after_intervals (3) x the tests' 1-second interval
    firings = [v for n, _, v in scraped if n == "crmsync_workflow_firings"]
    assert len(firings) == len(WORKFLOWS) * len(CONNECTIONS)
    assert all(math.isnan(v) for v in firings)


def test_labels_follow_prometheus_conventions(scraped: list[Sample]) -> None:
    """No `job` or `instance` label of ours; `connection` and `workflow` each name one thing."""
    for name, labels, _ in scraped:
        if not name.startswith("crmsync_"):
            continue
        assert not {"job", "instance", "name"} & labels.keys(), (name, labels)
        if "connection" in labels:
            assert labels["connection"] in CONNECTIONS, (name, labels)
        if "workflow" in labels:
            assert labels["workflow"] in WORKFLOWS, (name, labels)


def test_process_and_platform_collectors_are_there(scraped: list[Sample]) -> None:
    """Memory, CPU, open files, start time (restarts), the Python version and its GC."""
    names = {n for n, _, _ in scraped}
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        "python_info",
        "python_gc_collections_total",
    ):
        assert name in names, name
