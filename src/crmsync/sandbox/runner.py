"""The sandbox as one object: both CRMs generated, served over TLS, and controllable in process.

with Sandbox(SandboxConfig(opportunities=500)) as sb:
    sb.salesforce.url, sb.hubspot.url, sb.ca_path
    sb.salesforce.faults.add(Fault("rate_limit", endpoint="query*", retry_after=1))
    sb.salesforce.calls.counts()

Many tenants (tenants.py): SandboxConfig(salesforce_orgs=10, hubspot_portals=10), or
sb.add_salesforce_org() / sb.add_hubspot_portal(); each in sb.salesforce_orgs / sb.hubspot_portals
with its own credentials, url, calls and faults.
"""

from __future__ import annotations

import errno
import functools
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crmsync.errors import InvalidInput
from crmsync.sandbox.clock import Clock
from crmsync.sandbox.hubspot.portal import SEARCH_DELAY
from crmsync.sandbox.server import HttpsServer, TestCA
from crmsync.sandbox.sides import HUBSPOT_TOKEN, HubSpotSide, SalesforceSide
from crmsync.sandbox.tenants import (
    HubSpotRouter,
    SalesforceLogin,
    TenantData,
    build_org,
    build_portal,
    org_credentials,
    org_info,
    portal_info,
)

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
    # how many Salesforce orgs and HubSpot portals to host; each has its own login, data (seed:
    # `seed` plus its index), counters, quota and faults (tenants.py). 1 and 1: as before.
    salesforce_orgs: int = 1
    hubspot_portals: int = 1


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
    """Salesforce orgs and HubSpot portals (one of each by default), generated from seeds and
    served on localhost. `salesforce` and `hubspot` are the first org and portal."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config = config or SandboxConfig()
        self._own_dir = config.state_dir is None
        self.state_dir = config.state_dir or Path(tempfile.mkdtemp(prefix="crmsync-sandbox-"))
        self.clock = Clock()
        if config.now is not None:
            self.clock.freeze(config.now)
        self._private_key, self._public_key = _jwt_keypair()
        self.salesforce_orgs: list[SalesforceSide] = []
        self.hubspot_portals: list[HubSpotSide] = []
        self.ca: TestCA | None = None
        self._key_path: Path | None = None
        self._hubspot_server: HttpsServer | None = None
        for _ in range(max(1, config.salesforce_orgs)):
            self.add_salesforce_org()
        for _ in range(max(1, config.hubspot_portals)):
            self.add_hubspot_portal()

    @property
    def salesforce(self) -> SalesforceSide:
        """The first org: the single-tenant sandbox's, whose server is also the login endpoint."""
        return self.salesforce_orgs[0]

    @property
    def hubspot(self) -> HubSpotSide:
        """The first portal."""
        return self.hubspot_portals[0]

    @property
    def ca_path(self) -> Path:
        assert self.ca is not None, "start the sandbox first"
        return self.ca.ca_path

    def tenants_info(self) -> dict[str, Any]:
        """Every org's and portal's URLs and credentials, JSON-ready, for clients in other
        processes (benchmarks, worker processes)."""
        return {
            "ca_path": str(self.ca_path),
            "salesforce_orgs": [org_info(o) for o in self.salesforce_orgs],
            "hubspot_portals": [portal_info(p) for p in self.hubspot_portals],
        }

    def add_salesforce_org(
        self,
        *,
        opportunities: int | None = None,
        seed: int | None = None,
        daily_limit: int | None = None,
    ) -> SalesforceSide:
        """Another org with its own login, data (seed: the config's plus its index), counters,
        quota and faults; served at once if the sandbox is running."""
        c = self.config
        index = len(self.salesforce_orgs)
        data = self._tenant_data(index, opportunities, seed)
        side = build_org(
            index,
            self.clock,
            data,
            org_credentials(index, self._public_key),
            daily_limit=c.salesforce_daily_limit if daily_limit is None else daily_limit,
            fault_seed=c.fault_seed,
        )
        self.salesforce_orgs.append(side)
        if self.ca is not None:
            self._serve_org(side)
        return side

    def add_hubspot_portal(
        self,
        *,
        opportunities: int | None = None,
        seed: int | None = None,
        daily_limit: int | None = None,
    ) -> HubSpotSide:
        """Another portal with its own token, data, owners, counters, quota and faults."""
        c = self.config
        index = len(self.hubspot_portals)
        data = self._tenant_data(index, opportunities, seed)
        side = build_portal(
            index,
            self.clock,
            data,
            search_delay=c.search_delay,
            strict_batches=c.hubspot_strict_batches,
            daily_limit=c.hubspot_daily_limit if daily_limit is None else daily_limit,
            enforce_rate_limits=c.enforce_rate_limits,
            fault_seed=c.fault_seed,
        )
        self.hubspot_portals.append(side)
        if self._hubspot_server is not None:
            side.server, side.url = self._hubspot_server, self._hubspot_server.url
        return side

    def _tenant_data(self, index: int, opportunities: int | None, seed: int | None) -> TenantData:
        """The `index`th org's or portal's data: the config's size and seed (plus the index, so
        tenants differ) unless given."""
        c = self.config
        return TenantData(
            c.opportunities if opportunities is None else opportunities,
            c.seed + index if seed is None else seed,
            c.now,
        )

    def start(self) -> Sandbox:
        """Make the CA, bind the servers (free ports unless configured) and serve."""
        try:
            self.ca = TestCA(self.state_dir)
            key_path = self.state_dir / "jwt-private-key.pem"
            key_path.write_bytes(self._private_key)
            key_path.chmod(0o600)
        except OSError as e:
            raise InvalidInput(
                f"cannot write the sandbox's CA and key to {self.state_dir}: {e.strerror or e}"
            ) from None
        self._key_path = key_path
        for org in self.salesforce_orgs:
            self._serve_org(org)
        router = HubSpotRouter(self.hubspot_portals)
        hubspot = self._bind("hubspot", router, self.config.hubspot_port)
        self._hubspot_server = hubspot
        for portal in self.hubspot_portals:
            portal.server, portal.url = hubspot, hubspot.url
        hubspot.start()
        return self

    def _serve_org(self, side: SalesforceSide) -> None:
        """Serve one org on a server of its own (the first org's is the login endpoint too)."""
        side.jwt_private_key_path = self._key_path
        if side.index == 0:
            app: Any = SalesforceLogin(self.salesforce_orgs)
            server = self._bind("salesforce", app, self.config.salesforce_port)
        else:
            server = self._bind("salesforce", side.app, 0, threads=4)
        side.server, side.url = server, server.url
        side.app.base_url = server.url
        side.login_url = side.app.login_url = self.salesforce.url
        server.start()

    def _bind(self, name: str, app: Any, port: int, threads: int = 8) -> HttpsServer:
        try:
            return HttpsServer(app, self.ca, self.config.host, port, threads=threads)
        except OSError as e:
            self.stop()
            reason = (
                "the port is already in use"
                if e.errno == errno.EADDRINUSE or "in use" in str(e)
                else str(e)
            )
            raise InvalidInput(
                f"cannot serve the {name} sandbox on {self.config.host}:{port}: {reason}"
            ) from None

    def stop(self) -> None:
        for side in self.salesforce_orgs:
            if side.server is not None:
                side.server.stop()
                side.server = None
        if self._hubspot_server is not None:
            self._hubspot_server.stop()
            self._hubspot_server = None
            for portal in self.hubspot_portals:
                portal.server = None
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
