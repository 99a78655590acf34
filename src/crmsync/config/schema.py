"""The config file's shape: store, connections (sync settings, auth), write-back, service."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import parse_qs

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crmsync.config.report import ReportSettings
from crmsync.config.service import ServiceSettings
from crmsync.config.types import (
    ApiVersion,
    Cron,
    Duration,
    ExistingFile,
    Name,
    Number,
    Secret,
    Text,
    Url,
    Whole,
)
from crmsync.errors import InvalidInput
from crmsync.files import FieldError, FileModel
from crmsync.logs import redact_url

SALESFORCE_LOGIN_URL = "https://login.salesforce.com"
HUBSPOT_BASE_URL = "https://api.hubapi.com"

# `*_file` keys that stay paths (the program opens them itself) instead of naming a secret file
PATH_KEYS = frozenset({"ca_file", "private_key_file"})


# --- store --------------------------------------------------------------------------------------

DEFAULT_STORE_URL = "sqlite:///var/crmsync.db"


def redacted_url(url: str) -> str:
    """`url` with any password replaced by `***`, fit for logs and error messages."""
    return redact_url(url)


# SQLite URL parameters crmsync accepts: the others (`mode=ro`, `immutable`, `uri`) would open a
# store crmsync cannot write, or not the file the path names.
SQLITE_PARAMETERS = ("timeout",)


class Store(FileModel):
    """Where synced records live: SQLite (a file next to the config) or PostgreSQL."""

    url: str = Field(default=DEFAULT_STORE_URL, validate_default=True)  # resolved when loaded

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        scheme = value.partition("://")[0]
        if scheme == "sqlite":
            if not value.startswith("sqlite:///"):
                raise ValueError(f"must be sqlite:///<path>, not {redacted_url(value)!r}")
            base = (info.context or {}).get("base_dir")
            rest, query, params = value.removeprefix("sqlite:///").partition("?")
            for name in parse_qs(params, keep_blank_values=True):
                if name not in SQLITE_PARAMETERS:
                    raise ValueError(
                        f"SQLite store URLs take no {name!r} parameter (crmsync writes to its "
                        f"store; only {', '.join(SQLITE_PARAMETERS)} is accepted)"
                    )
            if base is not None and rest not in ("", ":memory:"):
                rest = os.path.normpath(Path(base) / Path(rest).expanduser())
            return f"sqlite:///{rest}{query}{params}"
        if re.fullmatch(r"postgres(ql)?(\+\w+)?", scheme) and value.partition("://")[2]:
            userinfo = value.partition("://")[2].rpartition("@")[0]
            if "@" in userinfo:  # read as user:pass@<rest of the password>@host by the driver
                raise ValueError(
                    "the password holds '@': percent-encode it ('@' is %40, '/' %2F, '?' %3F)"
                )
            return value
        raise ValueError(
            "must be a sqlite:///path or postgresql+psycopg://user@host/db URL, "
            f"not {redacted_url(value)!r}"
        )

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL and in-memory databases."""
        if not self.url.startswith("sqlite:///"):
            return None
        rest = self.url.removeprefix("sqlite:///").partition("?")[0]
        return Path(rest) if rest not in ("", ":memory:") else None

    def __repr_args__(self) -> Any:
        yield "url", redacted_url(self.url)


# --- sync settings ------------------------------------------------------------------------------


class SyncSettings(FileModel):
    """How and when one connection is synced; the same for every CRM but `page_size`."""

    schedule: Cron | None = None
    overlap_seconds: Whole = Field(default=300, ge=0, le=86_400)  # at most a day
    quota_share: Number = 0.8
    reconcile_every: Duration | None = None
    timeout_seconds: Number = Field(default=60.0, gt=0, le=3600)
    max_retries: Whole = Field(default=5, ge=0, le=100)
    retry_base_seconds: Number = Field(default=1.0, ge=0, le=60)  # first backoff wait
    # how long describe/properties, pipelines and owners/users read from the CRM are trusted
    reference_refresh_seconds: Whole = Field(default=3600, ge=0, le=86_400)

    @field_validator("quota_share")
    @classmethod
    def _share(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError(f"must be more than 0 and at most 1 (0.8 is 80%), not {value:g}")
        return value


class SalesforceSync(SyncSettings):
    """Sync settings of a Salesforce connection: query batches of 200 to 2000 records."""

    page_size: Whole = 2000

    @field_validator("page_size")
    @classmethod
    def _page_size(cls, value: int) -> int:
        if not 200 <= value <= 2000:
            raise ValueError(f"must be between 200 and 2000 for Salesforce, not {value}")
        return value


class HubSpotSync(SyncSettings):
    """Sync settings of a HubSpot connection: list pages hold up to 100, search pages 200."""

    page_size: Whole | None = None

    @field_validator("page_size")
    @classmethod
    def _page_size(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 200:
            raise ValueError(f"must be between 1 and 200 for HubSpot, not {value}")
        return value

    @property
    def list_limit(self) -> int:
        """Records per page of HubSpot's list endpoints (at most 100)."""
        return min(self.page_size or 100, 100)

    @property
    def search_limit(self) -> int:
        """Records per page of HubSpot's search endpoint (at most 200)."""
        return self.page_size or 200


# --- auth ---------------------------------------------------------------------------------------


class _SalesforceAuth(FileModel):
    login_url: Url = SALESFORCE_LOGIN_URL
    instance_url: Url | None = None
    ca_file: ExistingFile | None = None


class JwtBearerAuth(_SalesforceAuth):
    """OAuth JWT bearer flow: a connected app's certificate signs a token for `username`."""

    method: Literal["jwt_bearer"]
    client_id: Text
    username: Text
    private_key_file: ExistingFile

    def private_key(self) -> SecretStr:
        """The PEM private key that signs the assertion."""
        return SecretStr(self.private_key_file.read_text(encoding="utf-8"))


class ClientCredentialsAuth(_SalesforceAuth):
    """OAuth client credentials flow: the connected app runs as its configured user."""

    method: Literal["client_credentials"]
    client_id: Text
    client_secret: Secret


class PasswordAuth(_SalesforceAuth):
    """OAuth username-password flow (the security token is appended to the password)."""

    method: Literal["password"]
    client_id: Text
    client_secret: Secret
    username: Text
    password: Secret
    security_token: Secret | None = None


class RefreshTokenAuth(_SalesforceAuth):
    """OAuth refresh token flow: a long-lived token from an earlier authorization."""

    method: Literal["refresh_token"]
    client_id: Text
    client_secret: Secret | None = None
    refresh_token: Secret


class AccessTokenAuth(_SalesforceAuth):
    """A session id used as is (no login); it expires, so for tests and one-off runs."""

    method: Literal["access_token"]
    instance_url: Url
    access_token: Secret


SalesforceAuth = Annotated[
    JwtBearerAuth | ClientCredentialsAuth | PasswordAuth | RefreshTokenAuth | AccessTokenAuth,
    Field(discriminator="method"),
]


class PrivateAppAuth(FileModel):
    """A HubSpot private app's access token."""

    method: Literal["private_app"]
    access_token: Secret
    base_url: Url = HUBSPOT_BASE_URL
    ca_file: ExistingFile | None = None


# --- connections --------------------------------------------------------------------------------


class Routing(FileModel):
    """Where a task goes when its deal's owner is inactive or missing: the owner's manager
    (Salesforce `User.ManagerId`; HubSpot: the manager named for the owner's team), else the
    fallback owner; with neither, no task is created and the finding is recorded."""

    use_manager: bool = True
    fallback_owner: str | None = Field(default=None, min_length=1)  # a user/owner id or email
    team_managers: dict[str, str] = Field(default_factory=dict)  # HubSpot team id -> owner id


class SalesforceConnection(FileModel):
    """One Salesforce org to sync opportunities from."""

    name: Name
    type: Literal["salesforce"]
    mapping: ExistingFile
    auth: SalesforceAuth
    api_version: ApiVersion = "59.0"
    sync: SalesforceSync = Field(default_factory=SalesforceSync)
    routing: Routing | None = None
    # The CRM org or portal whose daily API allowance this connection spends, shared by every
    # worker (crmsync.store.quota): connections on one org should name the same. Default: name.
    org: Name | None = None

    @property
    def quota_org(self) -> str:
        return self.org or self.name


class HubSpotConnection(FileModel):
    """One HubSpot portal to sync deals from."""

    name: Name
    type: Literal["hubspot"]
    mapping: ExistingFile
    auth: PrivateAppAuth
    sync: HubSpotSync = Field(default_factory=HubSpotSync)
    routing: Routing | None = None
    # The CRM org or portal whose daily API allowance this connection spends, shared by every
    # worker (crmsync.store.quota): connections on one org should name the same. Default: name.
    org: Name | None = None

    @property
    def quota_org(self) -> str:
        return self.org or self.name


Connection = Annotated[SalesforceConnection | HubSpotConnection, Field(discriminator="type")]


class Writeback(FileModel):
    """How plans become CRM writes: the global dry-run switch, task caps, retries."""

    dry_run: bool = False  # plan and record nothing, write nothing (also: --dry-run)
    max_tasks_per_owner_per_day: Whole = Field(default=5, ge=1, le=100_000)
    max_attempts: Whole = Field(default=5, ge=1, le=100)  # then the action is parked
    # Records per write call; default the CRM's maximum (200 Salesforce, 100 HubSpot). Smaller
    # batches help orgs whose triggers hit CPU limits on big batches.
    batch_size: Whole | None = Field(default=None, ge=1, le=200)
    # Per-workflow mode overrides: `shadow` pauses a live workflow without editing its file;
    # `live` switches one on (the sandbox config does this for the shipped examples).
    modes: dict[str, Literal["shadow", "live"]] = Field(default_factory=dict)


class Config(FileModel):
    """The whole service configuration."""

    store: Store = Field(default_factory=dict, validate_default=True)  # resolved when loaded
    connections: list[Connection] = Field(min_length=1)
    workflows: Path | None = None  # the folder of workflow files; default ../workflows
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    writeback: Writeback = Field(default_factory=Writeback)
    report: ReportSettings = Field(default_factory=ReportSettings)
    _source: Path | None = PrivateAttr(default=None)

    def workflow_dir(self) -> Path:
        """Where this config's workflow files are: `workflows`, or ../workflows beside it."""
        base = self._source.parent if self._source else Path(".")
        if self.workflows is None:
            return Path(os.path.normpath(base / ".." / "workflows"))
        if self.workflows.is_absolute():
            return self.workflows
        return Path(os.path.normpath(base / self.workflows))

    @field_validator("workflows")
    @classmethod
    def _workflow_folder(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """A folder of workflow files: a file here would be read, and quoted, as one."""
        base = (info.context or {}).get("base_dir")
        if value is not None and base is not None and (Path(base) / value).is_file():
            raise ValueError(f"must be the folder of workflow files, not a file ({value})")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        first: dict[str, int] = {}
        for i, conn in enumerate(self.connections):
            if conn.name in first:
                raise FieldError(
                    f"duplicate connection name '{conn.name}' "
                    f"(also the name of connections[{first[conn.name]}])",
                    "connections",
                    i,
                    "name",
                )
            first[conn.name] = i
        return self

    @model_validator(mode="after")
    def _queue_needs_postgresql(self) -> Self:
        if self.service.scheduler == "queue" and not self.store.url.startswith("postgresql"):
            raise FieldError(
                "scheduler 'queue' needs a PostgreSQL store (store.url); with SQLite use "
                "'lease' or 'auto'",
                "service",
                "scheduler",
            )
        return self

    def scheduler(self) -> str:
        """How `crmsync run` shares the jobs: 'queue' (equal workers) or 'lease' (one runs)."""
        if self.service.scheduler != "auto":
            return self.service.scheduler
        return "queue" if self.store.url.startswith("postgresql") else "lease"

    @property
    def source(self) -> Path | None:
        """The file this configuration was loaded from."""
        return self._source

    def loaded_from(self, path: Path) -> None:
        """Remember the file this configuration came from (relative folders resolve from it)."""
        self._source = path

    def connection(self, name: str) -> SalesforceConnection | HubSpotConnection:
        """The connection called `name`; an `InvalidInput` listing the known ones otherwise."""
        for conn in self.connections:
            if conn.name == name:
                return conn
        known = ", ".join(c.name for c in self.connections)
        where = f"{self._source}: " if self._source else ""
        raise InvalidInput(f"{where}no connection named {name!r} (known: {known})")
