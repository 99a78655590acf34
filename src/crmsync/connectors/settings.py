"""Plain settings each connector needs, separated from how the config file spells them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SyncSettings:
    """How a connection pulls: look-back window, page size, quota guard, retries."""

    overlap_seconds: float = 300.0
    page_size: int | None = None  # None: the CRM's maximum
    quota_share: float = 0.8
    timeout_seconds: float = 60.0
    max_retries: int = 5
    retry_base_seconds: float = 1.0
    owner_directory: bool = False  # read users/owners for task routing
    # how long reference data (describe/properties, pipelines, owners/users) read from the CRM is
    # trusted before it is read again; a full sync always reads it afresh
    reference_refresh_seconds: float = 3600.0


@dataclass(frozen=True, repr=False)
class SalesforceAuth:
    """OAuth settings for one org; `method` picks which of the values are used."""

    method: str  # jwt_bearer | client_credentials | password | refresh_token | access_token
    login_url: str = "https://login.salesforce.com"
    instance_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    private_key_file: Path | None = None
    ca_file: Path | None = None

    def __repr__(self) -> str:  # secrets never reach logs or tracebacks
        return f"SalesforceAuth(method={self.method!r}, login_url={self.login_url!r})"


@dataclass(frozen=True, repr=False)
class HubSpotAuth:
    """A private-app access token and where the API lives."""

    access_token: str
    base_url: str = "https://api.hubapi.com"
    ca_file: Path | None = None

    def __repr__(self) -> str:
        return f"HubSpotAuth(base_url={self.base_url!r})"
