"""A config with one connection per org and portal of a many-tenant sandbox, and the helpers the
scale-out tests read a sandbox tenant and worker logs with (tests/service/test_chaos.py)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from crmsync.sandbox import Sandbox
from crmsync.sandbox.sides import HubSpotSide, SalesforceSide
from tests.service.support import ROOT, Event


def connection_names(sb: Sandbox) -> list[tuple[str, SalesforceSide | HubSpotSide]]:
    """(connection name, tenant) for every org and portal, in config order."""
    out: list[tuple[str, SalesforceSide | HubSpotSide]] = []
    out += [(f"sf{i}", org) for i, org in enumerate(sb.salesforce_orgs)]
    out += [(f"hs{i}", portal) for i, portal in enumerate(sb.hubspot_portals)]
    return out


def write_many_config(
    folder: Path,
    sb: Sandbox,
    store_url: str,
    *,
    service: dict[str, Any],
    live: bool = True,
    sync_schedule: str = "*/5 * * * *",
) -> Path:
    """One connection per tenant (`sf0`.., `hs0`..), the shipped workflows (live or not)."""
    folder.mkdir(parents=True, exist_ok=True)
    workflows = folder / "workflows"
    if not workflows.exists():
        shutil.copytree(ROOT / "workflows", workflows)
    connections: list[dict[str, Any]] = []
    for name, side in connection_names(sb):
        if isinstance(side, SalesforceSide):
            c = side.credentials
            auth: dict[str, Any] = {
                "method": "password",
                "login_url": side.login_url,
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "username": c.username,
                "password": c.password,
                "ca_file": str(sb.ca_path),
            }
            kind, mapping = "salesforce", "salesforce.yaml"
        else:
            auth = {
                "method": "private_app",
                "access_token": side.access_token,
                "base_url": side.url,
                "ca_file": str(sb.ca_path),
            }
            kind, mapping = "hubspot", "hubspot.yaml"
        connections.append(
            {
                "name": name,
                "type": kind,
                "mapping": str(ROOT / "connectors" / mapping),
                "auth": auth,
                "sync": {"schedule": sync_schedule, "max_retries": 3, "retry_base_seconds": 0.1},
            }
        )
    modes = {"pipeline-hygiene": "live", "stage-gates": "live"} if live else {}
    config = {
        "store": {"url": store_url},
        "workflows": str(workflows),
        "service": {"http": {"host": "127.0.0.1", "port": 0}, **service},
        "writeback": {"modes": modes},
        "connections": connections,
    }
    path = folder / "crmsync.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def task_keys(side: SalesforceSide | HubSpotSide) -> list[str]:
    """The crmsync keys of a tenant's tasks (one per task crmsync created)."""
    if isinstance(side, SalesforceSide):
        with side.org.lock:
            tasks = list(side.org.tables["Task"].values())
        return [str(t["CRMSync_Key__c"]) for t in tasks if t.get("CRMSync_Key__c")]
    with side.portal.lock:
        tasks_ = list(side.portal.objects["tasks"].values())
    return [str(t.properties["crmsync_key"]) for t in tasks_ if t.properties.get("crmsync_key")]


def at(event: Event) -> datetime:
    """When a JSON log event was written."""
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
