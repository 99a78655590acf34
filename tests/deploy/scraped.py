"""A fresh worker's scrape and, when Debian's `prometheus` is installed, a Prometheus server
scraping that worker, to run the shipped PromQL against."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crmsync.service.worker import Worker
from tests.deploy.promql import SYNTHETIC, TARGET_LABELS, Selector
from tests.service.fresh import Sample


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A Prometheus server of its own, scraping one crmsync worker every second."""

    def __init__(self, binary: str, folder: Path, target_port: int) -> None:
        self.port = _free_port()
        config = folder / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: crmsync\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n",
            encoding="utf-8",
        )
        self.log = folder / "prometheus.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def query(self, expr: str) -> dict[str, Any]:
        """The API's answer to an instant query (`status`, `data` or `error`)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return json.loads(answer.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as e:  # 400/422: the query is wrong; the body says why
            return json.loads(e.read())  # type: ignore[no-any-return]

    def wait_for_scrape(self, timeout: float = 60.0) -> None:
        """Until the worker's series are in (crmsync_info seen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited:\n" + self.log.read_text())
            try:
                if self.query("crmsync_info")["data"]["result"]:
                    return
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus never scraped the worker:\n" + self.log.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


@contextmanager
def prometheus_of(binary: str, folder: Path, worker: Worker) -> Iterator[Prometheus]:
    """A Prometheus that has scraped the worker at least once."""
    assert worker.http is not None
    folder.mkdir(parents=True, exist_ok=True)
    server = Prometheus(binary, folder, worker.http.port)
    try:
        server.wait_for_scrape()
        yield server
    finally:
        server.stop()


def missing_in(scraped: list[Sample], selector: Selector) -> str | None:
    """Why no sample of the scrape matches the selector (None when one does). Label matchers
    on the labels Prometheus adds (job, instance) are left to Prometheus."""
    if selector.name in SYNTHETIC:
        return None
    named = [labels for name, labels, _ in scraped if name == selector.name]
    if not named:
        return f"{selector.text()}: no series {selector.name}"
    for label, op, value in selector.matchers:
        if label in TARGET_LABELS:
            continue
        if not any(label in labels for labels in named):
            return f"{selector.text()}: {selector.name} has no label {label}"
        if op == "=" and not any(labels.get(label) == value for labels in named):
            return f"{selector.text()}: no {selector.name} with {label}={value!r}"
    return None
