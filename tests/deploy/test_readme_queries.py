"""The README's PromQL examples (its ```promql blocks) name series a fresh worker exports, and
a real Prometheus scraping that worker runs each of them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from crmsync.service.metrics import SERIES
from crmsync.service.queue_metrics import QUEUE_SERIES
from crmsync.service.worker import Worker
from tests.conftest import make_sandbox
from tests.deploy import promql
from tests.deploy.promql import readme_queries, selectors, tool
from tests.deploy.scraped import missing_in, prometheus_of
from tests.service.fresh import fresh_worker, samples, scrape


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One fresh worker for the module (no run yet)."""
    sb = make_sandbox()
    try:
        with fresh_worker(tmp_path_factory.mktemp("worker"), sb) as w:
            yield w
    finally:
        sb.stop()


def test_the_readme_has_promql_examples() -> None:
    """The README's alerting advice is written as PromQL a reader can paste."""
    assert len(readme_queries()) >= 5


def test_readme_examples_name_exported_series(worker: Worker) -> None:
    """Each metric, label and label value the README's examples select is in a fresh scrape."""
    scraped = samples(scrape(worker))
    problems = [
        why
        for q in readme_queries()
        for s in selectors(q)
        if (why := missing_in(scraped, s)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_prometheus_runs_the_readme_examples(
    worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Prometheus accepts each example, and each selector in it finds series."""
    folder = tmp_path_factory.mktemp("prometheus")
    with prometheus_of(tool("prometheus"), folder, worker) as prometheus:
        for query in readme_queries():
            answer = prometheus.query(query)
            assert answer["status"] == "success", (query, answer.get("error"))
            for s in selectors(query):
                assert prometheus.query(s.text())["data"]["result"], (query, s.text())


def test_the_readme_metrics_table_lists_every_series() -> None:
    """The README's metrics table names each series the worker exports, with its labels, and
    nothing else of crmsync's."""
    text = promql.README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(crmsync_\w+)(?:\{([^}]*)\})?` \|", text, re.MULTILINE)
    documented = {name: tuple(x.strip() for x in labels.split(",") if x.strip())
                  for name, labels in rows}  # fmt: skip
    assert documented == SERIES | QUEUE_SERIES
