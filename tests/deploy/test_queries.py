"""Every query the dashboard and the alert rules run names series a fresh worker exports
(names, labels and label values), and, run by a real Prometheus scraping that worker, each
one is valid PromQL and each of its selectors finds series."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.service.worker import Worker
from tests.conftest import make_sandbox
from tests.deploy.promql import DASHBOARD, dashboard_queries, rule_queries, selectors, tool
from tests.deploy.scraped import Prometheus, missing_in, prometheus_of
from tests.service.fresh import Sample, fresh_worker, samples, scrape

QUERIES = {"dashboard": dashboard_queries, "rules": rule_queries}


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One fresh worker for the module (no run yet)."""
    sb = make_sandbox()
    try:
        with fresh_worker(tmp_path_factory.mktemp("worker"), sb) as w:
            yield w
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def scraped(worker: Worker) -> list[Sample]:
    return samples(scrape(worker))


@pytest.fixture(scope="module")
def prometheus(worker: Worker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with prometheus_of(tool("prometheus"), tmp_path_factory.mktemp("prometheus"), worker) as p:
        yield p


def test_the_dashboard_covers_what_the_issue_asks() -> None:
    """Sync freshness, API calls and quota, findings and tasks per workflow, write-back
    outcomes, errors and process health each have a query."""
    text = "\n".join(dashboard_queries())
    for needed in (
        "crmsync_last_successful_sync_timestamp_seconds",
        "crmsync_api_calls_total",
        "crmsync_api_quota_remaining",
        "crmsync_workflow_firings",
        "crmsync_tasks_created_total",
        "crmsync_actions",
        'status="failed"',
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ):
        assert needed in text, needed


@pytest.mark.parametrize("source", QUERIES)
def test_every_selector_names_an_exported_series(source: str, scraped: list[Sample]) -> None:
    """Each metric, label and label value the queries select is in a fresh scrape."""
    queries = QUERIES[source]()
    assert queries
    problems = [
        why for q in queries for s in selectors(q) if (why := missing_in(scraped, s)) is not None
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", QUERIES)
def test_prometheus_runs_every_query(source: str, prometheus: Prometheus) -> None:
    """Prometheus accepts each query, and each selector in it finds series."""
    for query in QUERIES[source]():
        answer = prometheus.query(query)
        assert answer["status"] == "success", (query, answer.get("error"))
        for s in selectors(query):
            assert prometheus.query(s.text())["data"]["result"], (query, s.text())


def test_a_query_naming_a_missing_series_is_caught(
    scraped: list[Sample], prometheus: Prometheus, tmp_path: Path
) -> None:
    """The checks above can fail: an old name (`crmsync_job_errors_total{job, name}`) is
    reported missing by both."""
    (s,) = selectors('increase(crmsync_job_errors_total{name="sf"}[1h])')
    assert missing_in(scraped, s) is not None
    assert not prometheus.query(s.text())["data"]["result"]


def test_the_dashboard_is_well_formed() -> None:
    """Panels have unique ids, a title and a plain description, use the data source variable,
    and do not overlap on the 24-column grid."""
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = data["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        assert p["title"], p
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
        if p["type"] != "row":
            assert p["description"] and p["datasource"]["uid"] == "${datasource}", p["title"]
            assert all(t["datasource"]["uid"] == "${datasource}" for t in p["targets"])
