"""Connectors wired to a running sandbox, for the sync and connector tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmsync.config import load_mapping
from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.connectors.salesforce import SalesforceConnector
from crmsync.connectors.settings import HubSpotAuth, SalesforceAuth, SyncSettings
from crmsync.sandbox import Sandbox
from crmsync.sandbox.sides import HubSpotSide, SalesforceSide

ROOT = Path(__file__).resolve().parents[1]
FAST = {"retry_base_seconds": 0.01, "max_retries": 5}


def sf_connector(
    sb: Sandbox, method: str = "client_credentials", name: str = "sf", **settings: Any
) -> SalesforceConnector:
    """A Salesforce connector logged in to the sandbox org with the given OAuth method."""
    c = sb.salesforce.credentials
    auth = SalesforceAuth(
        method=method,
        login_url=sb.salesforce.url,
        client_id=c.client_id,
        client_secret=c.client_secret,
        username=c.username,
        password=c.password,
        refresh_token=c.refresh_token,
        access_token=c.static_access_token,
        instance_url=sb.salesforce.url if method == "access_token" else None,
        private_key_file=sb.salesforce.jwt_private_key_path,
        ca_file=sb.ca_path,
    )
    mapping = load_mapping(ROOT / "connectors" / "salesforce.yaml")
    return SalesforceConnector(name, auth, mapping, SyncSettings(**{**FAST, **settings}))


def hs_connector(sb: Sandbox, name: str = "hs", **settings: Any) -> HubSpotConnector:
    """A HubSpot connector pointed at the sandbox portal."""
    auth = HubSpotAuth(
        access_token=sb.hubspot.access_token, base_url=sb.hubspot.url, ca_file=sb.ca_path
    )
    mapping = load_mapping(ROOT / "connectors" / "hubspot.yaml")
    return HubSpotConnector(name, auth, mapping, SyncSettings(**{**FAST, **settings}))


def connector(sb: Sandbox, crm: str, **settings: Any) -> SalesforceConnector | HubSpotConnector:
    return sf_connector(sb, **settings) if crm == "salesforce" else hs_connector(sb, **settings)


def live_records(sb: Sandbox, crm: str) -> dict[str, dict[str, Any]]:
    """The sandbox's live (not deleted) opportunities, by native id, in comparable form."""
    return side_records(sb.salesforce if crm == "salesforce" else sb.hubspot)


def side_records(side: SalesforceSide | HubSpotSide) -> dict[str, dict[str, Any]]:
    """One org's or portal's live opportunities (any tenant of the sandbox), as live_records."""
    out: dict[str, dict[str, Any]] = {}
    stages = load_mapping(ROOT / "connectors" / f"{side.name}.yaml").stages
    if side.name == "salesforce":  # (a test's view of an org stands in for one too)
        with side.org.lock:
            for rec in side.org.tables["Opportunity"].values():
                if not rec["IsDeleted"]:
                    out[rec["Id"]] = {
                        "name": rec["Name"],
                        "stage": stages.get(rec["StageName"]),
                        "next_step": (rec["NextStep"] or "").strip() or None,
                    }
        return out
    with side.portal.lock:
        for rec in side.portal.objects["deals"].values():
            if not rec.archived:
                p = rec.properties
                out[str(rec.id)] = {
                    "name": p["dealname"],
                    "stage": stages.get(p["dealstage"] or ""),
                    "next_step": (p["hs_next_step"] or "").strip() or None,
                }
    return out


def stored_records(store: Any, connection: str, crm: str) -> dict[str, dict[str, Any]]:
    """The store's live opportunities of one connection, in the same comparable form."""
    return {
        opp.native_id: {"name": opp.name, "stage": opp.stage_canonical, "next_step": opp.next_step}
        for opp in store.iter_opportunities(connection)
    }
