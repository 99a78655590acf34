"""/metrics of a worker on the shared queue before any job (issue 19): every series of SERIES
but the lease, and every queue series at zero for each kind, with their documented labels."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from crmsync.config import load_config
from crmsync.sandbox import Sandbox
from crmsync.service.metrics import SERIES
from crmsync.service.queue_metrics import KINDS, QUEUE_SERIES
from crmsync.service.queue_worker import QueueWorker
from tests.service.fresh import samples
from tests.service.support import write_config

SUFFIXES = ("_bucket", "_count", "_sum")


def test_a_fresh_queue_worker_exports_the_queue_series(
    tmp_path: Path, sandbox: Sandbox, pg_url: str
) -> None:
    path = write_config(tmp_path, sandbox, pg_url)
    worker = QueueWorker(path, load_config(path), name="w")
    try:
        worker.catalog.refresh()
        scraped = samples(generate_latest(worker.metrics.registry).decode())
    finally:
        worker.store.close()
    names = {n for n, _, _ in scraped if n.startswith("crmsync_")}
    known = set(SERIES) | set(QUEUE_SERIES)
    bases = {
        next((n[: -len(s)] for s in SUFFIXES if n.endswith(s) and n[: -len(s)] in known), n)
        for n in names
    }
    assert bases == (set(SERIES) - {"crmsync_lease_held"}) | set(QUEUE_SERIES)
    for name, labels in QUEUE_SERIES.items():
        sample = name + "_count" if name == "crmsync_job_latency_seconds" else name
        found = [lab for n, lab, _ in scraped if n == sample]
        assert found, name
        assert all(tuple(sorted(lab)) == tuple(sorted(labels)) for lab in found), name
    depth = {(lab["kind"], lab["status"]): v for n, lab, v in scraped if n == "crmsync_queue_depth"}
    assert depth == {(k, s): 0.0 for k in KINDS for s in ("todo", "doing")}
