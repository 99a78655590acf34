"""The sandbox as one object: both CRMs generated, served over TLS, and controllable in process.

with Sandbox(SandboxConfig(opportunities=500)) as sb:
    sb.salesforce.url, sb.hubspot.url, sb.ca_path
    sb.salesforce.faults.add(Fault("rate_limit", endpoint="query*", retry_after=1))
    sb.salesforce.calls.counts()
"""

from __future__ import annotations

import errno
import functools
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crmsync.errors import InvalidInput
from crmsync.sandbox.admin import admin_app
from crmsync.sandbox.calls import CallLog, Quota
from crmsync.sandbox.clock import Clock
from crmsync.sandbox.faults import FaultInjector
from crmsync.sandbox.generator import generate
from crmsync.sandbox.hubspot.app import HubSpotApp
from crmsync.sandbox.hubspot.portal import SEARCH_DELAY, Portal
from crmsync.sandbox.salesforce.app import Credentials, SalesforceApp
from crmsync.sandbox.salesforce.org import Org
from crmsync.sandbox.server import HttpsServer, TestCA
from crmsync.sandbox.sides import HUBSPOT_TOKEN, HubSpotSide, SalesforceSide

__all__ = ["HUBSPOT_TOKEN", "Sandbox", "SandboxConfig"]


@dataclass
class SandboxConfig:
    """How big the sandbox is and how it behaves."""

    opportunities: int = 1000
    seed: int = 7
    now: datetime | None = None
    host: str = "127.0.0.1"
    salesforce_port: int = 0
    hubspot_port: int = 0
    state_dir: Path | None = None  # CA and keys go here; a temporary folder when None
    # Seconds (of the sandbox clock) before HubSpot search sees a write: "New writes take a few
    # seconds to become searchable" (HubSpot CRM search docs; ../shared/CRM_API_FACTS.md).
    search_delay: float = SEARCH_DELAY
    # HubSpot refuses a batch naming one record twice and fails a batch create with a taken
    # unique value whole (409); False answers per record instead (tests of per-record paths)
    hubspot_strict_batches: bool = True
    salesforce_daily_limit: int = 1_000_000
    hubspot_daily_limit: int = 1_000_000
    enforce_rate_limits: bool = False  # answer 429 past HubSpot's rolling limits
    fault_seed: int = 0


@functools.cache
def _jwt_keypair() -> tuple[bytes, bytes]:
    """An RSA key pair for the JWT bearer flow (made once per process: it takes a moment)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


class Sandbox:
    """A Salesforce org and a HubSpot portal, generated from a seed and served on localhost."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config = config or SandboxConfig()
        self._own_dir = config.state_dir is None
        self.state_dir = config.state_dir or Path(tempfile.mkdtemp(prefix="crmsync-sandbox-"))
        self.clock = Clock()
        data = generate(config.opportunities, seed=config.seed, now=config.now)
        if config.now is not None:
            self.clock.freeze(config.now)

        org = Org(self.clock)
        for name, records in data.salesforce.items():
            org.load(name, records)
        private, public = _jwt_keypair()
        creds = Credentials(jwt_public_key_pem=public)
        sf_calls = CallLog(Quota(config.salesforce_daily_limit))
        sf_faults = FaultInjector(config.fault_seed)
        sf_app = SalesforceApp(org, self.clock, sf_calls, sf_faults, creds)
        self.salesforce = SalesforceSide(
            "salesforce", self.clock, sf_calls, sf_faults, sf_app, org=org, credentials=creds
        )
        sf_app.admin = admin_app(self.salesforce)

        portal = Portal(self.clock, config.search_delay, config.hubspot_strict_batches)
        portal.load_owners(data.hubspot_owners)
        for kind, hs_records in data.hubspot.items():
            portal.load(kind, hs_records)
        portal.load_associations(data.hubspot_associations)
        hs_calls = CallLog(Quota(config.hubspot_daily_limit, enforce=config.enforce_rate_limits))
        hs_faults = FaultInjector(config.fault_seed + 1)
        hs_app = HubSpotApp(portal, self.clock, hs_calls, hs_faults, HUBSPOT_TOKEN)
        self.hubspot = HubSpotSide(
            "hubspot", self.clock, hs_calls, hs_faults, hs_app, portal=portal
        )
        hs_app.admin = admin_app(self.hubspot)

        self.ca: TestCA | None = None
        self._private_key = private

    @property
    def ca_path(self) -> Path:
        assert self.ca is not None, "start the sandbox first"
        return self.ca.ca_path

    def start(self) -> Sandbox:
        """Make the CA, bind both servers (free ports unless configured) and serve."""
        try:
            self.ca = TestCA(self.state_dir)
            key_path = self.state_dir / "jwt-private-key.pem"
            key_path.write_bytes(self._private_key)
            key_path.chmod(0o600)
        except OSError as e:
            raise InvalidInput(
                f"cannot write the sandbox's CA and key to {self.state_dir}: {e.strerror or e}"
            ) from None
        self.salesforce.jwt_private_key_path = key_path
        for side, port in (
            (self.salesforce, self.config.salesforce_port),
            (self.hubspot, self.config.hubspot_port),
        ):
            try:
                side.server = HttpsServer(side.app, self.ca, self.config.host, port)
            except OSError as e:
                self.stop()
                reason = (
                    "the port is already in use"
                    if e.errno == errno.EADDRINUSE or "in use" in str(e)
                    else str(e)
                )
                raise InvalidInput(
                    f"cannot serve the {side.name} sandbox on {self.config.host}:{port}: {reason}"
                ) from None
            side.url = side.server.url
            side.server.start()
        self.salesforce.app.base_url = self.salesforce.url
        return self

    def stop(self) -> None:
        for side in (self.salesforce, self.hubspot):
            if side.server is not None:
                side.server.stop()
                side.server = None
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
