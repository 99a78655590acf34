"""The service configuration (`config/crmsync.yaml`): the store, the CRMs, write-back, the service.

`schema.py` is the file's shape, `types.py` its value checks, `service.py` the `service:` block,
`load.py` reads config and mapping files. Everything a caller needs is re-exported here.
"""

from crmsync.config.load import load_config, load_mapping
from crmsync.config.schema import (
    DEFAULT_STORE_URL,
    HUBSPOT_BASE_URL,
    SALESFORCE_LOGIN_URL,
    AccessTokenAuth,
    ClientCredentialsAuth,
    Config,
    Connection,
    HubSpotConnection,
    HubSpotSync,
    JwtBearerAuth,
    PasswordAuth,
    PrivateAppAuth,
    RefreshTokenAuth,
    SalesforceConnection,
    SalesforceSync,
    Store,
    SyncSettings,
    Writeback,
    redacted_url,
)
from crmsync.config.service import HttpSettings, ServiceSettings

__all__ = [
    "DEFAULT_STORE_URL",
    "HUBSPOT_BASE_URL",
    "SALESFORCE_LOGIN_URL",
    "AccessTokenAuth",
    "ClientCredentialsAuth",
    "Config",
    "Connection",
    "HttpSettings",
    "HubSpotConnection",
    "HubSpotSync",
    "JwtBearerAuth",
    "PasswordAuth",
    "PrivateAppAuth",
    "RefreshTokenAuth",
    "SalesforceConnection",
    "SalesforceSync",
    "ServiceSettings",
    "Store",
    "SyncSettings",
    "Writeback",
    "load_config",
    "load_mapping",
    "redacted_url",
]
