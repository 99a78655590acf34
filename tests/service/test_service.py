"""`crmsync run` end to end, as a child process against the sandbox: scheduled syncs and
workflows, health and metrics, a clean stop, secrets kept out of the output, hot reloads."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crmsync.sandbox import Fault, Sandbox
from crmsync.store import Store
from tests.conftest import STORE_PASSWORD
from tests.service.support import (
    SF_CLIENT_SECRET,
    SF_PASSWORD,
    Event,
    ServiceProcess,
    metric,
    write_config,
)

pytestmark = pytest.mark.slow


def _finished(events: list[Event], job: str, **fields: str) -> list[Event]:
    return [
        e
        for e in events
        if e.get("event") == "job.finished"
        and e.get("job") == job
        and all(e.get(k) == v for k, v in fields.items())
    ]


def _runs(url: str) -> list[dict[str, object]]:
    with Store.open(url) as store:
        return store.runs(limit=10_000)


def test_service_syncs_plans_serves_and_stops_cleanly(tmp_path: Path, sandbox: Sandbox) -> None:
    """The worker syncs both CRMs and runs both workflows on its schedules, reports them in
    /metrics and /readyz, and on SIGTERM ends its in-flight sync cleanly and exits 0."""
    url = f"sqlite:///{tmp_path / 'crmsync.db'}"
    # /readyz's staleness window is 30 s here, not 3: on a busy machine a round of two syncs
    # and two workflows can take longer than three 1-second intervals
    config = write_config(
        tmp_path, sandbox, url, hubspot_page_size=10, service={"stale_after_intervals": 30}
    )
    with Store.open(url) as store:  # a run a killed worker left behind
        abandoned = store.start_run("sf", "Opportunity", "incremental", datetime.now(UTC))
    service = ServiceProcess(config)
    try:
        assert service.wait_event("runs.abandoned")["count"] == 1
        for conn in ("sf", "hs"):
            service.wait_event("job.finished", job="sync", connection=conn)
        for wf in ("pipeline-hygiene", "stage-gates"):
            event = service.wait_event("job.finished", job="workflow", workflow=wf)
            assert event["evaluated"] == 500 and event["mode"] == "shadow"
            assert event["duration_seconds"] >= 0
        first = _finished(service.events(), "sync", connection="hs")[0]
        assert (first["kind"], first["status"], first["fetched"]) == ("full", "ok", 250)

        status, body = service.get("/metrics")
        assert status == 200
        assert metric(body, "crmsync_syncs_total", connection="hs", status="ok") >= 1  # type: ignore[operator]
        assert metric(body, "crmsync_records_fetched_total", connection="sf") >= 250  # type: ignore[operator]
        assert metric(body, "crmsync_api_calls_total", connection="sf", kind="sync") > 0  # type: ignore[operator]
        assert metric(body, "crmsync_api_quota_remaining", connection="hs") > 0  # type: ignore[operator]
        assert metric(body, "crmsync_lease_held") == 1
        assert metric(body, "crmsync_actions", workflow="stage-gates", state="planned") == 0
        runs = metric(body, "crmsync_workflow_duration_seconds_count", workflow="stage-gates")
        assert (runs or 0) >= 1
        assert metric(body, "crmsync_workflow_runs_total", workflow="stage-gates", status="ok")

        status, body = service.get("/readyz")
        ready = json.loads(body)
        assert status == 200, ready
        assert ready["role"] == "active" and ready["failed"] == []
        assert {"database", "lease", "sync:sf", "sync:hs"} <= set(ready["checks"])
        assert service.get("/healthz")[0] == 200

        # stop while a sync is (most likely) under way: it ends after its current page
        started = len([e for e in service.events() if e.get("event") == "sync.started"])
        service.wait_event("sync.started", count=started + 1)
        assert service.terminate() == 0
    finally:
        service.close()
    events = service.events()
    assert [e["event"] for e in events][-1] == "service.stopped"
    assert any(e.get("event") == "lease.released" for e in events)
    assert not [e for e in events if e.get("event") is None]  # every line is a JSON event
    runs = _runs(url)
    assert runs and all(r["status"] != "running" and r["finished_at"] for r in runs)
    for run in runs:
        if run["id"] == abandoned:
            assert run["status"] == "failed" and "interrupted" in str(run["error"])
        elif run["status"] == "stopped":
            assert "shutdown" in str(run["error"])
        else:
            assert run["status"] == "ok", run


def test_secrets_never_appear_in_output_or_metrics(
    tmp_path: Path, sandbox: Sandbox, pg_url: str
) -> None:
    """The Salesforce client secret and password, the HubSpot token and the store password
    appear nowhere in what the worker prints (at debug level, with failing syncs) or serves."""
    token = sandbox.hubspot.access_token
    assert STORE_PASSWORD in pg_url
    # HubSpot fails for a while: the error paths log too
    sandbox.hubspot.faults.add(Fault("unavailable", endpoint="*", times=2))
    config = write_config(tmp_path, sandbox, pg_url, hubspot_retries=0)
    assert all(s in config.read_text() for s in (SF_CLIENT_SECRET, SF_PASSWORD, token))
    service = ServiceProcess(config, log_level="debug")
    try:
        service.wait_event("job.failed", job="sync", connection="hs")
        service.wait_event("job.finished", job="sync", connection="hs")
        service.wait_event("job.finished", job="workflow", workflow="stage-gates")
        texts = [service.get(path)[1] for path in ("/metrics", "/readyz", "/healthz", "/x")]
        assert metric(texts[0], "crmsync_syncs_total", connection="hs", status="failed")
        assert metric(texts[0], "crmsync_crm_retries_total", connection="hs") == 0
        assert service.terminate() == 0
    finally:
        service.close()
    texts.append(service.output())
    assert "store=postgresql+psycopg://postgres:***@" in texts[-1].replace('": "', "=")
    for secret in (SF_CLIENT_SECRET, SF_PASSWORD, token, STORE_PASSWORD):
        for text in texts:
            assert secret not in text


WORKFLOW = """\
name: big-deals
mode: shadow
schedule: {{cron: "0 7 * * 1-5", timezone: America/New_York}}
rules:
  - id: big
    kind: custom
    condition: amount != null && amount >= {threshold}
    title: A big deal
"""


def _replace(path: Path, text: str) -> None:
    """Write a file whole at once, as an editor saving it does (no half-written reads)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def test_an_invalid_edit_keeps_the_last_good_workflow(tmp_path: Path, sandbox: Sandbox) -> None:
    """While the worker runs, a broken edit of a workflow file is refused (logged, counted)
    and the last good version keeps running; a good edit applies from the next run on, and a
    new file gets its own job."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    path = workflows / "big-deals.yaml"
    path.write_text(WORKFLOW.format(threshold="50000.0"), encoding="utf-8")
    config = write_config(
        tmp_path, sandbox, f"sqlite:///{tmp_path / 'db.sqlite'}", workflows=workflows
    )
    service = ServiceProcess(config)
    try:
        service.wait_event("job.finished", job="sync", connection="sf")
        service.wait_event("job.finished", job="sync", connection="hs")

        def after_both_synced(events: list[Event]) -> Event | None:
            synced = [i for i, e in enumerate(events) if e in _finished(events, "sync")]
            runs = [(i, e) for i, e in enumerate(events) if e in _finished(events, "workflow")]
            later = [e for i, e in runs if len(synced) >= 2 and i > synced[1]]
            return later[0] if later else None

        good = service.wait_for(after_both_synced, what="a workflow run over synced data")
        assert good["firings"] > 0

        _replace(path, "name: big-deals\nrules: [\n")  # broken YAML
        failed = service.wait_event("workflow.reload_failed")
        assert failed["file"] == str(path) and str(path) in failed["error"]
        assert failed["kept_last_good"] is True
        n = len(_finished(service.events(), "workflow"))
        service.wait_event("job.finished", job="workflow", count=n + 2)
        for event in _finished(service.events(), "workflow")[n:]:
            assert event["version"] == good["version"]
            assert event["firings"] == good["firings"]  # the old rule, on unchanged data
        _, body = service.get("/metrics")
        assert (metric(body, "crmsync_workflow_reload_errors_total", file=str(path)) or 0) > 0
        assert metric(body, "crmsync_workflow_files_invalid") == 1

        _replace(path, WORKFLOW.format(threshold="1.0"))  # fixed, and wider
        service.wait_event("workflow.reloaded")
        n = len(_finished(service.events(), "workflow"))
        newer = service.wait_event("job.finished", job="workflow", count=n + 1)
        assert newer["version"] != good["version"]
        assert newer["firings"] > good["firings"]

        # a new file is scheduled without a restart
        other = WORKFLOW.format(threshold="1.0").replace("name: big-deals", "name: other")
        _replace(workflows / "other.yaml", other)
        service.wait_event("job.scheduled", job_id="workflow:other")
        service.wait_event("job.finished", job="workflow", workflow="other")
        assert service.terminate() == 0
    finally:
        service.close()


def test_readyz_fails_while_a_connection_cannot_sync(tmp_path: Path, sandbox: Sandbox) -> None:
    """When a connection's syncs keep failing past the allowed age, /readyz answers 503 and
    names that connection; the other connection's check still passes."""
    sandbox.hubspot.faults.add(Fault("unavailable", endpoint="*", times=None, rate=1.0))
    url = f"sqlite:///{tmp_path / 'crmsync.db'}"
    config = write_config(
        tmp_path, sandbox, url, hubspot_retries=0, service={"stale_after_intervals": 4}
    )
    service = ServiceProcess(config)
    try:
        service.wait_event("job.failed", job="sync", connection="hs")

        def not_ready(_events: list[Event]) -> dict[str, object] | None:
            status, body = service.get("/readyz")
            return json.loads(body) if status == 503 else None

        answer = service.wait_for(not_ready, what="/readyz to fail")
        assert answer["failed"] == ["sync:hs"]
        assert answer["checks"]["sync:sf"]["ok"] is True
        assert answer["checks"]["sync:hs"]["last_success"] is None
        assert service.get("/healthz")[0] == 200
        assert service.terminate() == 0
    finally:
        service.close()


def test_a_workflow_whose_time_passed_while_down_runs_at_start(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """stage-gates (Mondays 08:00) last ran eight days ago, so its time passed while no worker
    was up: the service runs it once at start. pipeline-hygiene never ran: it waits."""
    url = f"sqlite:///{tmp_path / 'crmsync.db'}"
    config = write_config(tmp_path, sandbox, url, service={"workflow_interval_seconds": None})
    long_ago = datetime.now(UTC) - timedelta(days=8)
    with Store.open(url) as store:
        store.record_job_run(
            "workflow:stage-gates", started_at=long_ago, finished_at=long_ago, status="ok"
        )
    service = ServiceProcess(config)
    try:
        caught = service.wait_event("job.catch_up")
        assert caught["job_id"] == "workflow:stage-gates"
        service.wait_event("job.finished", job="workflow", workflow="stage-gates")
        assert service.terminate() == 0
    finally:
        service.close()
    events = service.events()
    assert [e["job_id"] for e in events if e.get("event") == "job.catch_up"] == [
        "workflow:stage-gates"
    ]
    assert not _finished(events, "workflow", workflow="pipeline-hygiene")
    with Store.open(url) as store:
        last = store.last_job_run("workflow:stage-gates")
    assert last is not None and last > long_ago + timedelta(days=7)
    shown = subprocess.run(
        [sys.executable, "-m", "crmsync", "status", "-c", str(config)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert [line.split(" at ")[0] for line in shown if line.startswith("workflow ")] == [
        "workflow stage-gates: last scheduled run ok"
    ]
