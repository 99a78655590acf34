"""A sandbox, a store and a config wired together, for the write-back tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from crmsync.app.apply import ApplyReport, apply
from crmsync.app.factory import build_connector
from crmsync.app.sync import SyncSummary, sync
from crmsync.config import Config
from crmsync.sandbox import Fault, Sandbox
from crmsync.store import Store
from crmsync.workflows.render import ActionPlan
from tests.conftest import NOW
from tests.crm import ROOT

# A small live workflow: one rule with a flag and a task, one with a flag only.
WORKFLOW = """\
name: wb
mode: live
enroll: all  # every finding gets its task at once (test_golive tries the others)
calendar: {country: US}
rules:
  - id: no-next-step
    kind: staleness
    check: no_next_step
    title: No next step
    actions:
      flag: {field: flags, value: nonext}
      task:
        subject: "{{ name }}: add a next step"
        body: "{{ reasons|join('; ') }}"
        due_in_business_days: 2
        priority: high
  - id: amount-missing
    kind: hygiene
    check: amount_missing
    title: Amount missing
    actions:
      flag: {field: flags, value: noamount}
"""


def config_for(sb: Sandbox, store_url: str, workflows: Path, **writeback: Any) -> Config:
    """A config with both sandbox CRMs (fast retries) and the given workflow folder."""
    return Config.model_validate(config_dict(sb, store_url, workflows, **writeback))


def config_dict(sb: Sandbox, store_url: str, workflows: Path, **writeback: Any) -> dict[str, Any]:
    """The same config as plain data, e.g. to write a config file for a crmsync process."""
    fast = {"retry_base_seconds": 0.01, "max_retries": 3, "timeout_seconds": 10}
    return {
        "store": {"url": store_url},
        "workflows": str(workflows),
        "writeback": writeback,
        "connections": [
            {
                "name": "sf",
                "type": "salesforce",
                "mapping": str(ROOT / "connectors" / "salesforce.yaml"),
                "auth": {
                    "method": "client_credentials",
                    "login_url": sb.salesforce.url,
                    "client_id": sb.salesforce.credentials.client_id,
                    "client_secret": sb.salesforce.credentials.client_secret,
                    "ca_file": str(sb.ca_path),
                },
                "sync": fast,
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
                "sync": fast,
            },
        ],
    }


@dataclass
class World:
    sb: Sandbox
    store: Store
    config: Config

    def writeback(self, **settings: Any) -> None:
        """Change write-back settings (the config is immutable: replace it)."""
        wb = self.config.writeback.model_copy(update=settings)
        self.config = self.config.model_copy(update={"writeback": wb})

    def tick(self, seconds: float = 5) -> None:
        """Move the sandbox's clock on, so that what happens next is stamped later."""
        self.sb.clock.advance(timedelta(seconds=seconds))

    def sync(self, name: str | None = None) -> list[SyncSummary]:
        self.tick()  # what changed before now is older than the sync's start
        out = []
        for c in self.config.connections:
            if name is None or c.name == name:
                connector = build_connector(c)
                try:
                    out.append(sync(self.store, connector))
                finally:
                    connector.close()
        return out

    def apply(self, **kwargs: Any) -> ApplyReport:
        kwargs.setdefault("now", NOW)
        kwargs.setdefault("retry_pause", 0.0)
        return apply(self.config, self.store, **kwargs)

    def cycle(self, **kwargs: Any) -> ApplyReport:
        self.sync()
        return self.apply(**kwargs)

    def tasks(self, crm: str) -> list[dict[str, Any]]:
        """crmsync's tasks in the sandbox CRM (those carrying a key), as plain dicts."""
        if crm == "sf":
            return [
                dict(t)
                for t in self.sb.salesforce.org.tables["Task"].values()
                if t.get("CRMSync_Key__c") and not t["IsDeleted"]
            ]
        return [
            {
                "id": r.id,
                **r.properties,
                "deals": list(self.sb.hubspot.portal.associated("tasks", r.id, "deals")),
            }
            for r in self.sb.hubspot.portal.objects["tasks"].values()
            if r.properties.get("crmsync_key") and not r.archived
        ]

    def open_tasks(self, crm: str) -> list[dict[str, Any]]:
        if crm == "sf":
            return [t for t in self.tasks(crm) if t["Status"] != "Completed"]
        return [t for t in self.tasks(crm) if t["hs_task_status"] != "COMPLETED"]

    def flags(self, crm: str) -> dict[str, str | None]:
        if crm == "sf":
            return {
                r["Id"]: r.get("CRMSync_Flags__c")
                for r in self.sb.salesforce.org.tables["Opportunity"].values()
                if not r["IsDeleted"]
            }
        return {
            str(r.id): r.properties.get("crmsync_flags") or None
            for r in self.sb.hubspot.portal.objects["deals"].values()
            if not r.archived
        }

    def calls(self, crm: str) -> Counter[str]:
        side = self.sb.salesforce if crm == "sf" else self.sb.hubspot
        return Counter(side.calls.counts())


def write_workflow(folder: Path, text: str = WORKFLOW, name: str = "wb.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def at(moment: datetime) -> dict[str, Any]:
    return {"now": moment}


def slow_write_world(
    sb: Sandbox,
    store: Store,
    store_url: str,
    tmp_path: Path,
    workflow: str,
    *,
    batch_size: int,
    delay: float,
) -> tuple[World, Path]:
    """A synced world whose write and search calls each take `delay` seconds, with its config
    saved for `crmsync apply` subprocesses: long windows for a kill or a second apply to land in."""
    folder = tmp_path / "workflows"
    write_workflow(folder, workflow, "all-open.yaml")
    data = config_dict(
        sb, store_url, folder, max_tasks_per_owner_per_day=100_000, batch_size=batch_size
    )
    path = tmp_path / "crmsync.yaml"
    path.write_text(yaml.safe_dump(data))
    w = World(sb, store, config_for(sb, store_url, folder, max_tasks_per_owner_per_day=100_000))
    w.sync()
    for side, endpoints in (
        (sb.salesforce, ("collections_*", "query")),
        (sb.hubspot, ("*.batch.*", "deals.search")),
    ):
        for endpoint in endpoints:
            side.faults.add(Fault("slow", endpoint=endpoint, delay=delay, times=None))
    return w, path


def builds_counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The titles of the rules whose actions (task texts) are built from now on, in order."""
    built: list[str] = []
    real = ActionPlan.build

    def counted(self: ActionPlan, *args: Any) -> Any:
        built.append(self.title)
        return real(self, *args)

    monkeypatch.setattr(ActionPlan, "build", counted)
    return built
