"""The series the operations pack added count what happens: 429s and retries from the
connectors, quota and API calls from syncs, firings per connection, tasks created and
write-back API calls from workflow runs, the last good sync from the store."""

from __future__ import annotations

import gc
import math
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from crmsync.actions.executor import ExecSummary
from crmsync.app.sync import SyncSummary
from crmsync.connectors.retry import Retriable, call_with_retries
from crmsync.sandbox import Fault, Sandbox
from crmsync.service.jobs import JobContext, run_sync, run_workflow
from crmsync.service.metrics import Metrics
from tests.service.fresh import fresh_worker, scrape
from tests.service.support import metric


def _text(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def _flaky(failures: list[Retriable]) -> object:
    """A call failing with each of `failures` in turn, then answering 'ok'."""
    left = list(failures)

    def call() -> str:
        if left:
            raise left.pop(0)
        return "ok"

    return call


def test_429s_and_retries_are_counted_per_connection() -> None:
    """Two 429s and a 503 on sf: three retries, two of them rate limited; hs untouched."""
    metrics = Metrics(connections=["sf", "hs"])
    failures = [Retriable("429", rate_limited=True), Retriable("503"),
                Retriable("429", 0.0, rate_limited=True)]  # fmt: skip
    answer = call_with_retries(
        _flaky(failures),  # type: ignore[arg-type]
        retries=5, base_wait=0.0, what="query", connection="sf", crm="salesforce",
    )  # fmt: skip
    assert answer == "ok"
    text = _text(metrics)
    assert metric(text, "crmsync_crm_rate_limited_total", connection="sf") == 2
    assert metric(text, "crmsync_crm_retries_total", connection="sf") == 3
    assert metric(text, "crmsync_crm_retries_total", connection="hs") == 0


def test_a_gone_worker_stops_listening() -> None:
    """The connectors hold the metrics weakly: a dropped Metrics no longer counts, and its
    going breaks no CRM call."""
    kept = Metrics(connections=["sf"])
    Metrics(connections=["sf"])  # dropped at once
    gc.collect()
    call_with_retries(
        _flaky([Retriable("429", rate_limited=True)]),  # type: ignore[arg-type]
        retries=1, base_wait=0.0, what="q", connection="sf", crm="salesforce",
    )  # fmt: skip
    assert metric(_text(kept), "crmsync_crm_rate_limited_total", connection="sf") == 1


def test_a_sync_sets_quota_and_counts_its_calls() -> None:
    """Quota left and the allowance come from the CRM's report; calls count as `sync`."""
    metrics = Metrics(connections=["hs"])
    summary = SyncSummary("hs", "deals", "incremental", api_calls=7, fetched=40,
                          quota_used=250, quota_limit=1000)  # fmt: skip
    metrics.record_sync(summary, 2.0)
    text = _text(metrics)
    assert metric(text, "crmsync_api_quota_remaining", connection="hs") == 750
    assert metric(text, "crmsync_api_quota_limit", connection="hs") == 1000
    assert metric(text, "crmsync_api_calls_total", connection="hs", kind="sync") == 7
    assert metric(text, "crmsync_api_calls_total", connection="hs", kind="writeback") == 0
    assert metric(text, "crmsync_records_fetched_total", connection="hs") == 40
    assert metric(text, "crmsync_syncs_total", connection="hs", status="ok") == 1
    assert metric(text, "crmsync_sync_duration_seconds_sum", connection="hs") == 2.0


def test_a_workflow_run_counts_tasks_and_writeback_calls_per_connection() -> None:
    """Tasks created and write-back calls land on the run's workflow and each connection."""
    metrics = Metrics(connections=["sf", "hs"])
    metrics.known_workflow("stage-gates", "/w/stage-gates.yaml", ["sf", "hs"])
    sends = [ExecSummary("sf", created=3, api_calls=5), ExecSummary("hs", created=1, api_calls=2)]
    metrics.record_workflow("stage-gates", "ok", 1.5, firings={"sf": 4, "hs": 0}, sends=sends)
    text = _text(metrics)
    wf = {"workflow": "stage-gates"}
    assert metric(text, "crmsync_tasks_created_total", connection="sf", **wf) == 3
    assert metric(text, "crmsync_tasks_created_total", connection="hs", **wf) == 1
    assert metric(text, "crmsync_api_calls_total", connection="sf", kind="writeback") == 5
    assert metric(text, "crmsync_workflow_firings", connection="sf", **wf) == 4
    assert metric(text, "crmsync_workflow_firings", connection="hs", **wf) == 0
    assert metric(text, "crmsync_workflow_runs_total", status="ok", **wf) == 1


@pytest.mark.parametrize("connection", ["sf", "hs"])
def test_real_syncs_through_a_rate_limited_sandbox(
    connection: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    """Against the sandbox answering 429 twice: the connector's retries and 429s, the sync's
    calls and quota, the last good sync read from the store, and a workflow's firings."""
    if connection == "sf":  # (a 429 at login is a refused login, not a retry)
        sandbox.salesforce.faults.add(Fault("rate_limit", endpoint="query", times=2))
    else:
        sandbox.hubspot.faults.add(Fault("rate_limit", endpoint="*", times=2))
    with fresh_worker(tmp_path, sandbox) as worker:
        # the jobs as the active worker runs them (this one holds no lease: it would stop)
        ctx = JobContext(worker.config, worker.config_path, worker.store, lambda: False)
        started = time.time()
        summary = run_sync(ctx, connection)
        worker.metrics.record_sync(summary, time.time() - started)
        version = worker.catalog.get("stage-gates")
        assert version is not None
        reports: list[object] = []
        run_workflow(ctx, "stage-gates", version.snapshot, reports.append)
        (report,) = reports
        firings = {w.connection: w.firings for w in report.workflows}  # type: ignore[attr-defined]
        worker.metrics.record_workflow("stage-gates", "ok", 1.0, firings=firings)
        text = scrape(worker)
    assert metric(text, "crmsync_crm_rate_limited_total", connection=connection) == 2
    assert metric(text, "crmsync_crm_retries_total", connection=connection) == 2
    assert metric(text, "crmsync_syncs_total", connection=connection, status="ok") == 1
    assert (metric(text, "crmsync_api_calls_total", connection=connection, kind="sync") or 0) > 2
    quota = metric(text, "crmsync_api_quota_remaining", connection=connection)
    assert quota is not None and not math.isnan(quota) and quota > 0
    last = metric(text, "crmsync_last_successful_sync_timestamp_seconds", connection=connection)
    assert last is not None and started <= last <= time.time()
    found = metric(text, "crmsync_workflow_firings", workflow="stage-gates", connection=connection)
    assert found == firings[connection] and found > 0
