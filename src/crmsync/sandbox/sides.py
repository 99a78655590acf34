"""Each sandbox CRM as the admin endpoints and tests drive it: counters, faults, clock, and the
admin writes (create, update, delete, touch) that bypass the API's rules.

`runner.Sandbox` builds one side per CRM; `admin.admin_app` serves a side over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmsync.errors import InvalidInput
from crmsync.sandbox.calls import CallLog
from crmsync.sandbox.clock import Clock, hs_datetime, parse_datetime, sf_datetime
from crmsync.sandbox.faults import FaultInjector
from crmsync.sandbox.hubspot.portal import Portal
from crmsync.sandbox.hubspot.schema import object_type
from crmsync.sandbox.salesforce.auth import Credentials
from crmsync.sandbox.salesforce.org import Org
from crmsync.sandbox.salesforce.schema import sobject
from crmsync.sandbox.server import HttpsServer

HUBSPOT_TOKEN = "pat-na1-00000000-sand-box0-0000-crmsync00000"
FIRST_HUB_ID = 20_000_001  # the first portal's hub id; the next ones count up from it


@dataclass
class CrmSide:
    """One sandbox CRM: its app, counters, faults and admin operations."""

    name: str
    clock: Clock
    calls: CallLog
    faults: FaultInjector
    app: Any
    url: str = ""
    server: HttpsServer | None = field(default=None, repr=False)
    index: int = 0  # which org or portal of the sandbox (0: the first, the single-tenant one)

    def call_summary(self) -> dict[str, Any]:
        return {
            "counts": self.calls.counts(),
            "total": self.calls.total(),
            "daily_used": self.calls.daily_used,
            "daily_remaining": self.calls.daily_remaining,
        }

    # the admin operations below are overridden per CRM
    def admin_create(self, kind: str, fields: dict[str, Any]) -> str:
        raise NotImplementedError

    def admin_update(self, kind: str, record_id: str, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def admin_delete(self, kind: str, record_id: str, hard: bool = False) -> None:
        raise NotImplementedError

    def touch(self, kind: str, ids: list[str], at: str) -> None:
        raise NotImplementedError

    def expire_sessions(self) -> None:
        return None


@dataclass
class SalesforceSide(CrmSide):
    org: Org = field(default=None, repr=False)  # type: ignore[assignment]
    credentials: Credentials = field(default_factory=Credentials)
    jwt_private_key_path: Path | None = None
    login_url: str = ""  # the shared login endpoint; `url` is this org's own instance

    def admin_create(self, kind: str, fields: dict[str, Any]) -> str:
        return self.org.create(_sf_type(kind), fields, system=True)

    def admin_update(self, kind: str, record_id: str, fields: dict[str, Any]) -> None:
        self.org.update(_sf_type(kind), record_id, fields, system=True)

    def admin_delete(self, kind: str, record_id: str, hard: bool = False) -> None:
        self.org.delete(_sf_type(kind), record_id, hard=hard)

    def touch(self, kind: str, ids: list[str], at: str) -> None:
        """Give records one SystemModstamp and LastModifiedDate without other changes."""
        stamp = sf_datetime(parse_datetime(at))
        with self.org.lock:
            for rid in ids:
                rec = self.org.get(_sf_type(kind), rid)
                if rec is None:
                    raise InvalidInput(f"no {kind} record {rid}")
                rec["SystemModstamp"] = rec["LastModifiedDate"] = stamp

    def expire_sessions(self) -> None:
        self.app.expire_sessions()


@dataclass
class HubSpotSide(CrmSide):
    portal: Portal = field(default=None, repr=False)  # type: ignore[assignment]
    access_token: str = HUBSPOT_TOKEN
    hub_id: int = FIRST_HUB_ID

    def admin_create(self, kind: str, fields: dict[str, Any]) -> str:
        return str(self.portal.create(_hs_type(kind), fields).id)

    def admin_update(self, kind: str, record_id: str, fields: dict[str, Any]) -> None:
        self.portal.update(_hs_type(kind), int(record_id), fields, system=True)

    def admin_delete(self, kind: str, record_id: str, hard: bool = False) -> None:
        self.portal.archive(_hs_type(kind), int(record_id), hard=hard)

    def touch(self, kind: str, ids: list[str], at: str) -> None:
        """Give records one hs_lastmodifieddate/updatedAt without other changes."""
        when = parse_datetime(at)
        t = _hs_type(kind)
        with self.portal.lock:
            for rid in ids:
                rec = self.portal.objects[t].get(int(rid))
                if rec is None:
                    raise InvalidInput(f"no {kind} record {rid}")
                rec.properties["hs_lastmodifieddate"] = hs_datetime(when)
                rec.updated_at = when


def _sf_type(kind: str) -> str:
    obj = sobject(kind)
    if obj is None:
        raise InvalidInput(f"unknown Salesforce object {kind!r}")
    return obj.name


def _hs_type(kind: str) -> str:
    t = object_type(kind)
    if t is None:
        raise InvalidInput(f"unknown HubSpot object type {kind!r}")
    return t
