"""GET /report: the latest report page, built once on the first request or by the scheduled
job, 503 while the first build is under way, the previous page kept when a build fails."""

from __future__ import annotations

import gzip
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from crmsync.config import load_config
from crmsync.report.document import ReportDoc
from crmsync.sandbox import Sandbox
from crmsync.service.http import HttpServer, make_app
from crmsync.service.jobs import JobContext
from crmsync.service.metrics import Metrics
from crmsync.service.registry import REPORT_JOB, JobRegistry
from crmsync.service.report import LatestReport
from crmsync.service.wrappers import JobRunner
from tests.report.dom import parse
from tests.report.sample import HOSTILE, sample_doc
from tests.service.support import ServiceProcess, write_config

ROOT = Path(__file__).resolve().parents[2]


class Builds:
    """A report builder that counts its builds, can be held mid-build, and can fail."""

    def __init__(self) -> None:
        self.count = 0
        self.hold: threading.Event | None = None
        self.entered = threading.Event()
        self.error: Exception | None = None

    def __call__(self) -> ReportDoc:
        self.count += 1
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(30)
        if self.error is not None:
            raise self.error
        return sample_doc()


def _ready() -> tuple[bool, dict[str, Any]]:
    return True, {"status": "ready"}


@pytest.fixture
def serve() -> Iterator[Callable[[LatestReport | None], HttpServer]]:
    servers: list[HttpServer] = []

    def start(report: LatestReport | None) -> HttpServer:
        app = make_app(Metrics().registry, _ready, report.page if report else None)
        server = HttpServer("127.0.0.1", 0, app)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _get(
    server: HttpServer, path: str = "/report", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_the_first_request_builds_the_page_and_later_ones_reuse_it(serve: Any) -> None:
    """GET /report answers the rendered page as HTML; a second GET builds nothing again."""
    builds = Builds()
    server = serve(LatestReport(builds))
    status, headers, body = _get(server)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert parsedate_to_datetime(headers["Last-Modified"]) == sample_doc().generated_at
    tree = parse(body.decode())
    assert tree.find("body")[0].attrs["data-charts"] == "5"
    assert HOSTILE in [li.all_text() for li in tree.find("li")][1]
    assert _get(server)[2] == body and builds.count == 1
    head = urllib.request.Request(f"http://127.0.0.1:{server.port}/report", method="HEAD")
    with urllib.request.urlopen(head, timeout=30) as r:  # headers only
        assert r.status == 200 and r.read() == b""
        assert r.headers["Content-Length"] == str(len(body))


def test_a_client_that_accepts_gzip_gets_it(serve: Any) -> None:
    """The page (about 5 MB with plotly.js) goes compressed to a browser that asks."""
    server = serve(LatestReport(Builds()))
    status, headers, body = _get(server, **{"Accept-Encoding": "gzip"})
    plain = _get(server)[2]
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == plain and len(body) < len(plain) / 2


def test_while_the_first_build_runs_others_are_told_to_come_back(serve: Any) -> None:
    """A request during the first build is answered 503 at once, not held; then 200."""
    builds = Builds()
    builds.hold = threading.Event()
    server = serve(LatestReport(builds))
    first: list[int] = []
    waiting = threading.Thread(target=lambda: first.append(_get(server)[0]))
    waiting.start()
    assert builds.entered.wait(30)
    status, headers, body = _get(server)
    assert status == 503 and headers["Retry-After"] == "60"
    assert body == b"The pipeline report is being built; try again in a minute.\n"
    assert _get(server, "/healthz")[0] == 200  # the endpoint's threads stay free
    builds.hold.set()
    waiting.join(30)
    assert first == [200] and _get(server)[0] == 200 and builds.count == 1


def test_a_failed_build_says_where_to_look_and_keeps_the_last_page(serve: Any) -> None:
    """No page yet and the build fails: 500 with a plain line (not the error's text). With a
    page, a failed rebuild keeps serving it."""
    builds = Builds()
    builds.error = RuntimeError("password=hunter2 leaked in an error")
    report = LatestReport(builds, max_age=0)
    server = serve(report)
    status, _, body = _get(server)
    assert status == 500 and b"hunter2" not in body and b"report.render_failed" in body
    builds.error = None
    good = _get(server)
    assert good[0] == 200
    builds.error = RuntimeError("down")
    with pytest.raises(RuntimeError):
        report.rebuild()  # the job's failure is raised to the job...
    again = _get(server)  # ...and a request (stale at max_age=0) tries, fails, keeps the page
    assert again[0] == 200 and again[2] == good[2] and builds.count == 4


def test_a_stale_page_is_rebuilt_by_the_next_request(serve: Any) -> None:
    """Past max_age (a standby runs no scheduled rebuild) the next request builds anew."""
    builds = Builds()
    server = serve(LatestReport(builds, max_age=0))
    _get(server)
    _get(server)
    assert builds.count == 2
    fresh = Builds()
    server = serve(LatestReport(fresh, max_age=3600))
    _get(server)
    _get(server)
    assert fresh.count == 1


def test_report_is_get_only_and_absent_without_a_source(serve: Any) -> None:
    """POST /report is 405 like every other path; a worker without a report answers 404."""
    server = serve(LatestReport(Builds()))
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/report", data=b"", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    assert _get(serve(None))[0] == 404


class _Jobs:
    def sync_job(self, connection: str) -> None: ...
    def workflow_job(self, workflow: str) -> None: ...
    def rescan_job(self) -> None: ...
    def report_job(self) -> None: ...


class _Catalog:
    def versions(self) -> dict[str, Any]:
        return {}


def test_the_rebuild_is_scheduled_on_the_configured_cron(tmp_path: Path) -> None:
    """The registry schedules the report's rebuild on config.report.schedule, in the service's
    time zone."""
    path = tmp_path / "crmsync.yaml"
    path.write_text(
        "connections:\n  - name: sf\n    type: salesforce\n"
        f"    mapping: {ROOT / 'connectors' / 'salesforce.yaml'}\n"
        '    auth: {method: access_token, instance_url: "https://x.my.salesforce.com", '
        "access_token: t}\n"
        "service: {timezone: Europe/Paris}\nreport: {schedule: '30 7 * * 1'}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    jobs = _Jobs()
    registry = JobRegistry(config, _Catalog(), None, jobs, lambda: True)  # type: ignore[arg-type]
    registry.start()
    try:
        registry.register()
        job = registry.scheduler.get_job(REPORT_JOB)
        assert job is not None and job.func == jobs.report_job
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["minute"], fields["hour"]) == ("30", "7")
        assert str(job.trigger.timezone) == "Europe/Paris"
    finally:
        registry.shutdown()


@pytest.mark.slow
def test_a_running_service_serves_the_report(tmp_path: Path, sandbox: Sandbox) -> None:
    """`crmsync run` answers GET /report with the report of what it synced, built once."""
    url = f"sqlite:///{tmp_path / 'crmsync.db'}"
    service = ServiceProcess(write_config(tmp_path, sandbox, url))
    try:
        for conn in ("sf", "hs"):
            service.wait_event("job.finished", job="sync", connection=conn)
        status, body = service.get("/report")
        assert status == 200, body[:500]
        tree = parse(body)
        charts = int(tree.find("body")[0].attrs["data-charts"])
        assert charts > 0 and len(tree.find("div", "plot")) == charts
        scope = [li.all_text() for li in tree.find("ul", "scope")[0].find("li")]
        assert any("sf" in line and "hs" in line for line in scope), scope
        built = service.wait_event("report.rendered", on="request")
        assert built["charts"] == charts
        assert service.get("/report") == (200, body)  # the same page, not built again
        assert [e for e in service.events() if e.get("event") == "report.rendered"] == [built]
        assert service.terminate() == 0
    finally:
        service.close()


class _Runs:
    """A store that only records job runs."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    def record_job_run(
        self, job_id: str, *, started_at: Any, finished_at: Any, status: str
    ) -> None:
        self.runs.append((job_id, status))


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    """Every log event, whatever level an earlier test configured (`--log-level error`)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def test_the_report_job_rebuilds_and_keeps_the_last_page_on_failure(
    events: list[dict[str, Any]],
) -> None:
    """The scheduled job builds a new page, logs it and records the run; a failed build is
    logged and recorded, the previous page still served; a stopping worker builds nothing."""
    builds, runs, stop = Builds(), _Runs(), [False]
    report = LatestReport(builds)
    ctx = JobContext(None, Path("c.yaml"), runs, lambda: stop[0])  # type: ignore[arg-type]
    runner = JobRunner(ctx, None, Metrics(), lambda: None, report)  # type: ignore[arg-type]
    runner.report_job()
    page = report.latest
    assert page is not None and builds.count == 1 and runs.runs == [("report", "ok")]
    (done,) = [e for e in events if e["event"] == "job.finished"]
    assert done["charts"] == 5 and done["bytes"] == len(page.html)
    builds.error = RuntimeError("database went away")
    runner.report_job()
    assert report.latest is page and runs.runs[-1] == ("report", "failed")
    assert [e["error"] for e in events if e["event"] == "job.failed"] == ["database went away"]
    stop[0] = True
    runner.report_job()
    assert builds.count == 2 and len(runs.runs) == 2


class _OneWorkflow:
    """A catalog of one workflow, unchanged (the workflow job reads its snapshot)."""

    def refresh(self) -> bool:
        return False

    def get(self, _name: str) -> Any:
        import types

        return types.SimpleNamespace(snapshot=None)


def test_a_library_panic_in_a_job_is_a_failed_job(
    events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """polars' PanicException derives from BaseException: a sync, workflow or report job that
    meets one logs `job.failed` and records the run, as for any crash, instead of letting it
    through to the scheduler."""
    from polars.exceptions import PanicException

    from crmsync.service import wrappers

    def panics(*_: object, **__: object) -> None:
        raise PanicException("index out of bounds")

    monkeypatch.setattr(wrappers, "run_sync", panics)
    monkeypatch.setattr(wrappers, "run_workflow", panics)
    builds, runs = Builds(), _Runs()
    builds.error = PanicException("index out of bounds")
    ctx = JobContext(None, Path("c.yaml"), runs, lambda: False)  # type: ignore[arg-type]
    runner = JobRunner(ctx, _OneWorkflow(), Metrics(), lambda: None, LatestReport(builds))  # type: ignore[arg-type]
    runner.sync_job("sf")
    runner.workflow_job("pipeline-hygiene", "sf")
    runner.report_job()
    failed = [e for e in events if e["event"] == "job.failed"]
    assert [e["error_type"] for e in failed] == ["PanicException"] * 3
    assert ("report", "failed") in runs.runs and (
        "workflow:pipeline-hygiene",
        "failed",
    ) in runs.runs
