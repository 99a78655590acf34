"""Many Salesforce orgs and HubSpot portals in one sandbox process; the credentials pick the tenant.

As in the real APIs: Salesforce has one login endpoint for every org (login.salesforce.com), the
credentials sent to it pick the org, and its answer names the org's own instance URL (here: the
org's own HTTPS server, a port of its own, as each real org has a My Domain host of its own). An
access token is valid only on its org's instance; sent to another org it is refused with 401
INVALID_SESSION_ID. HubSpot has one API host for every portal, and the private-app token picks the
portal. Each tenant has its own records, users/owners, call counters, quota and faults; the clock
is the sandbox's, shared by all (real orgs share real time). The first org and the first portal
are the single-tenant sandbox of before, with the same credentials, URLs and data.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import jwt

from crmsync.sandbox.admin import admin_app
from crmsync.sandbox.calls import CallLog, Quota
from crmsync.sandbox.clock import Clock
from crmsync.sandbox.faults import FaultInjector
from crmsync.sandbox.generator import generate
from crmsync.sandbox.hubspot.app import HubSpotApp
from crmsync.sandbox.hubspot.portal import Portal
from crmsync.sandbox.salesforce.app import Credentials, SalesforceApp
from crmsync.sandbox.salesforce.auth import ORG_ID
from crmsync.sandbox.salesforce.org import Org
from crmsync.sandbox.sides import FIRST_HUB_ID, HUBSPOT_TOKEN, HubSpotSide, SalesforceSide

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ADMIN_PORTALS = "/__sandbox/portals/"  # /__sandbox/portals/<hub id>/calls: one portal's admin


@dataclass(frozen=True)
class TenantData:
    """How one tenant's records are made: its own seed, so tenants' data differ."""

    opportunities: int
    seed: int
    now: datetime | None


def org_credentials(index: int, jwt_public_key: bytes) -> Credentials:
    """The login of the `index`th org (0: the single-tenant sandbox's, unchanged)."""
    if index == 0:
        return Credentials(jwt_public_key_pem=jwt_public_key)
    org_id = f"00D8d{index:06d}SaNdBOX"
    return Credentials(
        client_id=f"crmsync-sandbox-client-org{index}",
        client_secret=f"crmsync-sandbox-secret-org{index}",
        username=f"admin@org{index}.crmsync-sandbox.example",
        password=f"sandbox-password-org{index}",
        security_token=f"SANDBOXTOKEN{index}",
        refresh_token=f"5Aep861SandboxRefreshTokenOrg{index}",
        static_access_token=f"{org_id}!StaticSandboxAccessToken",
        jwt_public_key_pem=jwt_public_key,
        org_id=org_id,
    )


def org_pod(index: int) -> str:
    """The two characters after the key prefix in the `index`th org's record ids (0: "8d", as
    before). Salesforce ids are unique across orgs; digits and lower case only, so the
    case-safe suffix of an id stays the same when its pod is swapped."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    n = (alphabet.index("8") * 36 + alphabet.index("d") + index) % (36 * 36)
    return alphabet[n // 36] + alphabet[n % 36]


def _with_pod(records: list[dict[str, Any]], pod: str) -> list[dict[str, Any]]:
    """The generated records (made with pod "8d") with every id moved to `pod`."""
    if pod == "8d":
        return records
    for rec in records:
        for key, value in rec.items():
            if key.endswith("Id") and _is_id(value) and value[3:5] == "8d":
                rec[key] = value[:3] + pod + value[5:]
    return records


def _is_id(value: object) -> bool:
    return isinstance(value, str) and len(value) == 18


def portal_token(index: int) -> str:
    """The private-app token of the `index`th portal (0: the single-tenant sandbox's)."""
    if index == 0:
        return HUBSPOT_TOKEN
    return f"pat-na1-{index:08x}-sand-box0-0000-crmsync{index:05d}"


def build_org(
    index: int,
    clock: Clock,
    data: TenantData,
    credentials: Credentials,
    *,
    daily_limit: int,
    fault_seed: int,
) -> SalesforceSide:
    """One Salesforce org with its records, counters, quota, faults and admin endpoints."""
    generated = generate(data.opportunities, seed=data.seed, now=data.now, hubspot=False)
    pod = org_pod(index)
    org = Org(clock, pod=pod)
    for name, records in generated.salesforce.items():
        org.load(name, _with_pod(records, pod))
    calls = CallLog(Quota(daily_limit))
    faults = FaultInjector(fault_seed + 2 * index)
    app = SalesforceApp(org, clock, calls, faults, credentials)
    side = SalesforceSide(
        "salesforce", clock, calls, faults, app, org=org, credentials=credentials, index=index
    )
    app.admin = admin_app(side)
    return side


def build_portal(
    index: int,
    clock: Clock,
    data: TenantData,
    *,
    search_delay: float,
    strict_batches: bool,
    daily_limit: int,
    enforce_rate_limits: bool,
    fault_seed: int,
) -> HubSpotSide:
    """One HubSpot portal with its records, owners, counters, quota, faults and admin endpoints."""
    generated = generate(data.opportunities, seed=data.seed, now=data.now, salesforce=False)
    portal = Portal(clock, search_delay, strict_batches)
    portal.load_owners(generated.hubspot_owners)
    for kind, records in generated.hubspot.items():
        portal.load(kind, records)
    portal.load_associations(generated.hubspot_associations)
    calls = CallLog(Quota(daily_limit, enforce=enforce_rate_limits))
    faults = FaultInjector(fault_seed + 2 * index + 1)
    token = portal_token(index)
    app = HubSpotApp(portal, clock, calls, faults, token)
    side = HubSpotSide(
        "hubspot",
        clock,
        calls,
        faults,
        app,
        portal=portal,
        access_token=token,
        hub_id=FIRST_HUB_ID + index,
        index=index,
    )
    app.admin = admin_app(side)
    return side


def org_info(side: SalesforceSide) -> dict[str, Any]:
    """What a client needs to reach one org (the shape `crmsync sandbox --json` prints)."""
    c = side.credentials
    return {
        "org_id": c.org_id,
        "login_url": side.login_url,
        "instance_url": side.url,
        "client_id": c.client_id,
        "client_secret": c.client_secret,
        "username": c.username,
        "password": c.password,
        "security_token": c.security_token,
        "refresh_token": c.refresh_token,
        "access_token": c.static_access_token,
        "jwt_private_key_path": str(side.jwt_private_key_path),
        "admin_url": side.url + "/__sandbox",
    }


def portal_info(side: HubSpotSide) -> dict[str, Any]:
    """What a client needs to reach one portal."""
    return {
        "hub_id": side.hub_id,
        "base_url": side.url,
        "access_token": side.access_token,
        "admin_url": f"{side.url}{ADMIN_PORTALS}{side.hub_id}",
    }


class SalesforceLogin:
    """The first org's server: the shared login endpoint, whose credentials pick the org, and
    the first org's instance for everything else."""

    def __init__(self, orgs: list[SalesforceSide]) -> None:
        self.orgs = orgs  # the sandbox's list: orgs added later are found too

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        first = self.orgs[0].app
        if environ.get("PATH_INFO", "").rstrip("/") != "/services/oauth2/token":
            return first(environ, start_response)
        body = _read_body(environ)
        client_id = _client_id(parse_qs(body.decode("utf-8", "replace")))
        org = next((o for o in self.orgs if o.credentials.client_id == client_id), self.orgs[0])
        return org.app(environ, start_response)


class HubSpotRouter:
    """The HubSpot server: the private-app token picks the portal; an unknown token goes to the
    first portal, which refuses it (401) as the single-tenant sandbox did."""

    def __init__(self, portals: list[HubSpotSide]) -> None:
        self.portals = portals

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(ADMIN_PORTALS):
            hub_id, _, rest = path[len(ADMIN_PORTALS) :].partition("/")
            side = next((p for p in self.portals if str(p.hub_id) == hub_id), None)
            if side is None:
                start_response("404 Not Found", [("Content-Type", "application/json")])
                return [b'{"error":"no such portal"}']
            environ["PATH_INFO"] = "/__sandbox/" + rest
            return side.app(environ, start_response)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        side = next((p for p in self.portals if p.access_token == token), self.portals[0])
        return side.app(environ, start_response)


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back so the org's app can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _client_id(form: dict[str, list[str]]) -> str | None:
    """The connected app a token request names: `client_id`, or a JWT assertion's issuer."""
    if form.get("client_id"):
        return form["client_id"][0]
    assertion = (form.get("assertion") or [""])[0]
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


__all__ = [
    "ORG_ID",
    "HubSpotRouter",
    "SalesforceLogin",
    "TenantData",
    "build_org",
    "build_portal",
    "org_credentials",
    "org_info",
    "org_pod",
    "portal_info",
    "portal_token",
]
