"""A worker that has just started: config loaded, workflows read, /metrics served, no lease
taken and no job run. What a scrape looks like before anything happened."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from crmsync.config import load_config
from crmsync.sandbox import Sandbox
from crmsync.service.worker import Worker
from tests.service.support import write_config

# The example workflows' names (workflows/*.yaml) and the connections of support.write_config.
WORKFLOWS = ("pipeline-hygiene", "stage-gates")
CONNECTIONS = ("sf", "hs")

Sample = tuple[str, dict[str, str], float]  # (name, labels, value)


@contextmanager
def fresh_worker(folder: Path, sandbox: Sandbox) -> Iterator[Worker]:
    """A worker of the two sandbox connections serving HTTP on a free port, stopped after."""
    config_path = write_config(folder, sandbox, f"sqlite:///{folder / 'crmsync.db'}")
    worker = Worker(config_path, load_config(config_path))
    assert worker.http is not None
    worker.catalog.refresh()
    worker.http.start()
    try:
        yield worker
    finally:
        worker.http.stop()
        worker.store.close()


def scrape(worker: Worker) -> str:
    """GET /metrics of the worker, as text."""
    assert worker.http is not None
    url = f"http://127.0.0.1:{worker.http.port}/metrics"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return str(answer.read().decode())


def samples(text: str) -> list[Sample]:
    """Every sample of a scrape, parsed by prometheus_client's own parser."""
    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
