"""Fixtures shared by the whole suite: a running sandbox and real CRM clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import hubspot
import pytest
import requests
import structlog
from simple_salesforce import Salesforce

from crmsync.sandbox import Sandbox, SandboxConfig
from crmsync.store import Store
from tests.stores import pg_schema

# A fixed instant, so generated data and derived dates are the same on every run.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
API_VERSION = "59.0"


def make_sandbox(opportunities: int = 250, **kwargs: object) -> Sandbox:
    """A started sandbox with fixed data; the caller stops it."""
    config = SandboxConfig(opportunities=opportunities, now=NOW, **kwargs)  # type: ignore[arg-type]
    return Sandbox(config).start()


@pytest.fixture(autouse=True)
def _log_configuration_restored() -> Iterator[None]:
    """Each test leaves structlog as it found it: a command run with `--log-level error`
    would otherwise drop the info events a later test captures (the order of tests matters)."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A small sandbox (250 opportunities per CRM) of its own for one test."""
    sb = make_sandbox()
    try:
        yield sb
    finally:
        sb.stop()


def sf_session(sb: Sandbox) -> requests.Session:
    """A requests session that trusts the sandbox CA and ignores REQUESTS_CA_BUNDLE."""
    session = requests.Session()
    session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would win over verify
    session.verify = str(sb.ca_path)
    return session


def sf_login(sb: Sandbox, session: requests.Session | None = None) -> dict[str, str]:
    """Log in with the password grant; returns the token answer."""
    c = sb.salesforce.credentials
    answer = (session or sf_session(sb)).post(
        sb.salesforce.url + "/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "username": c.username,
            "password": c.password,
        },
    )
    answer.raise_for_status()
    return dict(answer.json())


def sf_client(sb: Sandbox, session: requests.Session | None = None) -> Salesforce:
    """simple-salesforce, unmodified, logged in to the sandbox org over TLS."""
    session = session or sf_session(sb)
    token = sf_login(sb, session)
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=session,
        version=API_VERSION,
    )


def hs_client(sb: Sandbox, token: str | None = None) -> hubspot.HubSpot:
    """hubspot-api-client, unmodified, pointed at the sandbox portal over TLS."""
    return hubspot.Client.create(
        access_token=token or sb.hubspot.access_token,
        host=sb.hubspot.url,
        ssl_ca_cert=str(sb.ca_path),
    )


# ---- stores: every store-backed test runs on SQLite and on PostgreSQL (tests/stores.py) ------


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty store: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'crmsync.db'}"
        return
    with pg_schema() as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, migrated store on each backend, closed afterwards."""
    s = Store.open(store_url)
    try:
        yield s
    finally:
        s.close()


# PostgreSQL here trusts local connections, so any password is accepted: one stands in for the
# real secret a production store URL would carry.
STORE_PASSWORD = "Pg-S3cret-4-crmsync-Tests"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL (with a password in it) to a fresh PostgreSQL schema, dropped afterwards."""
    with pg_schema(STORE_PASSWORD) as url:
        yield url
