"""Helpers for the service tests: a config pointing at a sandbox, and `crmsync run` as a process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from crmsync.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]

# The sandbox's fixed credentials, used as the "secrets" of the generated configs.
SF_CLIENT_SECRET = "crmsync-sandbox-secret"
SF_PASSWORD = "sandbox-password"

Event = dict[str, Any]


def write_config(
    folder: Path,
    sb: Sandbox,
    store_url: str,
    *,
    service: dict[str, Any] | None = None,
    workflows: Path | None = None,
    hubspot_page_size: int | None = None,
    hubspot_retries: int = 2,
) -> Path:
    """A config syncing both CRMs of `sb` into `store_url`, with short service schedules.

    Salesforce logs in with the password flow and HubSpot with its token, so the config holds
    three secrets (client secret, password, token); the store URL may hold a fourth.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if workflows is None:
        workflows = folder / "workflows"
        if not workflows.exists():
            shutil.copytree(ROOT / "workflows", workflows)
    c = sb.salesforce.credentials
    hs_sync: dict[str, Any] = {"schedule": "*/5 * * * *", "max_retries": hubspot_retries}
    if hubspot_page_size is not None:
        hs_sync["page_size"] = hubspot_page_size
    config = {
        "store": {"url": store_url},
        "workflows": str(workflows),
        "service": {
            "http": {"host": "127.0.0.1", "port": 0},
            "sync_interval_seconds": 1,
            "workflow_interval_seconds": 1,
            "lease_seconds": 2,
            **(service or {}),
        },
        "connections": [
            {
                "name": "sf",
                "type": "salesforce",
                "mapping": str(ROOT / "connectors" / "salesforce.yaml"),
                "auth": {
                    "method": "password",
                    "login_url": sb.salesforce.url,
                    "client_id": c.client_id,
                    "client_secret": c.client_secret,
                    "username": c.username,
                    "password": c.password,
                    "ca_file": str(sb.ca_path),
                },
                "sync": {"schedule": "*/5 * * * *", "max_retries": 2},
            },
            {
                "name": "hs",
                "type": "hubspot",
                "mapping": str(ROOT / "connectors" / "hubspot.yaml"),
                "auth": {
                    "method": "private_app",
                    "access_token": sb.hubspot.access_token,
                    "base_url": sb.hubspot.url,
                    "ca_file": str(sb.ca_path),
                },
                "sync": hs_sync,
            },
        ],
    }
    path = folder / "crmsync.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


class ServiceProcess:
    """`crmsync run` in a child process, its JSON log lines read from a file as they come."""

    def __init__(self, config: Path, name: str = "service", log_level: str = "info") -> None:
        self.folder = config.parent
        self.stdout_path = self.folder / f"{name}.stdout"
        self.stderr_path = self.folder / f"{name}.stderr"
        self._port: int | None = None
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "crmsync.cli"),
                    *("--log-format", "json", "--log-level", log_level),
                    *("run", "-c", str(config)),
                ],
                stdout=out,
                stderr=err,
                cwd=self.folder,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    # ---- output -----------------------------------------------------------------------------
    def output(self) -> str:
        """Everything the process printed so far, stdout then stderr."""
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )

    def events(self) -> list[Event]:
        """The log events so far; a line that is not JSON becomes {"event": None, "raw": line}."""
        out: list[Event] = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": None, "raw": line}
            out.append(event if isinstance(event, dict) else {"event": None, "raw": line})
        return out

    def wait_for(
        self, predicate: Callable[[list[Event]], Any], timeout: float = 90.0, what: str = ""
    ) -> Any:
        """Poll the log until `predicate(events)` is truthy, and return its value."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            found = predicate(events)
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"crmsync run exited ({self.proc.returncode}) before {what}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-5000:]}")
            time.sleep(0.1)

    def wait_event(self, name: str, timeout: float = 90.0, count: int = 1, **fields: Any) -> Event:
        """Wait for the `count`-th event called `name` with these field values; returns it."""

        def match(events: list[Event]) -> Event | None:
            hits = [
                e
                for e in events
                if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
            ]
            return hits[count - 1] if len(hits) >= count else None

        return self.wait_for(match, timeout, what=f"{count}x {name} {fields}")  # type: ignore[no-any-return]

    # ---- http -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            self._port = int(self.wait_event("http.listening")["port"])
        return self._port

    def get(self, path: str) -> tuple[int, str]:
        """GET a path of the service's HTTP endpoint: (status, body)."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    # ---- stopping ---------------------------------------------------------------------------
    def terminate(self, timeout: float = 90.0) -> int:
        """SIGTERM, then wait for the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: the process dies without cleaning up (a crash)."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def metric(text: str, name: str, /, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None
