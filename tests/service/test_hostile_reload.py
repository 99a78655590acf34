"""Hostile workflow files dropped into the folder of a running `crmsync run`: each is refused at
reload (`workflow.reload_failed`, the invalid-files metric), and the service keeps running, keeps
its good workflow, answers /healthz and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.files.test_hostile_files import HOSTILE_DIR, header, materialize
from tests.service.support import ROOT, ServiceProcess, metric

pytestmark = pytest.mark.slow

MEMORY_BYTES = 1024 * 1024 * 1024

TEMPLATES_DIR = ROOT / "tests" / "data" / "hostile" / "templates"
# Every workflow file of the hostile corpora (files and templates); the config-only ones
# (`# run: validate --config`) are not workflows.
HOSTILE = [
    p
    for p in sorted(HOSTILE_DIR.glob("*.yaml")) + sorted(TEMPLATES_DIR.glob("*.yaml"))
    if "run" not in header(p)[1]
]


GOOD = """\
name: good
rules:
  - id: closed
    kind: custom
    condition: is_closed
    title: Closed
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


class CappedService(ServiceProcess):
    """`crmsync run` as a child process capped at 1 GiB, so a blow-up fails the test, not the
    machine."""

    def __init__(self, config: Path) -> None:
        self.folder = config.parent
        self.stdout_path = self.folder / "service.stdout"
        self.stderr_path = self.folder / "service.stderr"
        self._port = None
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "crmsync.cli",
                    "--log-format",
                    "json",
                    "run",
                    "-c",
                    str(config),
                ],
                stdout=out,
                stderr=err,
                cwd=self.folder,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_limit_memory,
            )


def _config(folder: Path) -> Path:
    """A config whose one connection cannot be reached (its sync fails and is retried next
    year): the test is about the workflow folder, rescanned every second."""
    config = {
        "store": {"url": f"sqlite:///{folder / 'db.sqlite'}"},
        "workflows": str(folder / "workflows"),
        "service": {
            "http": {"host": "127.0.0.1", "port": 0},
            "workflow_rescan_seconds": 1,
            "lease_seconds": 2,
        },
        "connections": [
            {
                "name": "hs",
                "type": "hubspot",
                "mapping": str(ROOT / "connectors" / "hubspot.yaml"),
                "auth": {
                    "method": "private_app",
                    "access_token": "pat-na1-unreachable",
                    "base_url": "https://127.0.0.1:9",
                },
                "sync": {"schedule": "0 0 1 1 *", "max_retries": 0},
            }
        ],
    }
    path = folder / "crmsync.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_hostile_workflow_files_are_refused_at_reload(tmp_path: Path) -> None:
    """Each hostile workflow file of both corpora gets `workflow.reload_failed` with its
    one-line error and counts in `crmsync_workflow_files_invalid`; the good workflow stays,
    /healthz answers throughout, and SIGTERM still ends the service with exit code 0."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "good.yaml").write_text(GOOD, encoding="utf-8")
    service = CappedService(_config(tmp_path))
    try:
        service.wait_event("workflow.loaded", workflow="good")
        staging = tmp_path / "staging"
        staging.mkdir()
        expected: dict[str, str] = {}
        for path in HOSTILE:
            expect, extra = header(path)
            made = materialize(path, extra.get("expand"), staging)
            name = f"{path.parent.name}-{path.name}"
            staged = staging / f"{name}.part"
            staged.write_bytes(made.read_bytes())
            target = workflows / name
            staged.replace(target)  # whole at once, as an editor saves
            expected[str(target)] = f"{target}:{expect}"

        assert len(expected) >= 50
        for file, error in expected.items():
            failed = service.wait_event("workflow.reload_failed", timeout=30, file=file)
            assert failed["error"] == error
        status, body = service.get("/healthz")
        assert status == 200 and json.loads(body) == {"status": "alive"}
        _, scraped = service.get("/metrics")
        assert metric(scraped, "crmsync_workflow_files_invalid") == len(HOSTILE)
        assert not [e for e in service.events() if e.get("event") == "workflow.removed"]

        assert service.terminate(timeout=30) == 0
        assert "Traceback" not in service.output()
    finally:
        service.close()
