"""Building the right connector for a configured connection."""

from __future__ import annotations

from typing import Any

from crmsync.config import HubSpotConnection, SalesforceConnection, load_mapping
from crmsync.connectors.base import Connector
from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.connectors.salesforce import SalesforceConnector
from crmsync.connectors.settings import HubSpotAuth, SalesforceAuth, SyncSettings
from crmsync.errors import InvalidInput


def build_connector(conn: SalesforceConnection | HubSpotConnection) -> Connector:
    """A ready connector (not yet logged in) for one connection of the config."""
    mapping = load_mapping(conn.mapping)
    if mapping.crm != conn.type:
        raise InvalidInput(
            f"{conn.mapping}: a {mapping.crm} mapping cannot serve the "
            f"{conn.type} connection '{conn.name}'"
        )
    settings = SyncSettings(
        overlap_seconds=float(conn.sync.overlap_seconds),
        page_size=conn.sync.page_size,
        quota_share=conn.sync.quota_share,
        timeout_seconds=conn.sync.timeout_seconds,
        max_retries=conn.sync.max_retries,
        retry_base_seconds=conn.sync.retry_base_seconds,
        reference_refresh_seconds=float(conn.sync.reference_refresh_seconds),
        owner_directory=conn.routing is not None,
    )
    if isinstance(conn, SalesforceConnection):
        a = conn.auth
        auth = SalesforceAuth(
            method=a.method,
            login_url=str(a.login_url),
            instance_url=str(a.instance_url) if a.instance_url else None,
            client_id=_get(a, "client_id"),
            client_secret=_secret(a, "client_secret"),
            username=_get(a, "username"),
            password=_secret(a, "password"),
            security_token=_secret(a, "security_token"),
            refresh_token=_secret(a, "refresh_token"),
            access_token=_secret(a, "access_token"),
            private_key_file=getattr(a, "private_key_file", None),
            ca_file=a.ca_file,
        )
        return SalesforceConnector(conn.name, auth, mapping, settings, conn.api_version)
    hs = HubSpotAuth(
        access_token=conn.auth.access_token.get_secret_value(),
        base_url=str(conn.auth.base_url),
        ca_file=conn.auth.ca_file,
    )
    return HubSpotConnector(conn.name, hs, mapping, settings)


def _get(obj: Any, name: str) -> str | None:
    value = getattr(obj, name, None)
    return None if value is None else str(value)


def _secret(obj: Any, name: str) -> str | None:
    value = getattr(obj, name, None)
    return None if value is None else str(value.get_secret_value())
