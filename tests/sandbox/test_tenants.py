"""Many Salesforce orgs and HubSpot portals in one sandbox: the credentials pick the tenant."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests

from crmsync.app.sync import sync
from crmsync.sandbox import Fault, Sandbox
from crmsync.sandbox.sides import HubSpotSide, SalesforceSide
from crmsync.store import Store
from tests.conftest import API_VERSION, make_sandbox, sf_login, sf_session
from tests.crm import connector, hs_connector, live_records, sf_connector, stored_records


@pytest.fixture
def two_by_two() -> Iterator[Sandbox]:
    """Two orgs and two portals, 60 deals each, in one sandbox."""
    sb = make_sandbox(opportunities=60, salesforce_orgs=2, hubspot_portals=2)
    try:
        yield sb
    finally:
        sb.stop()


class _Org:
    """An org as the suite's helpers (tests/crm.py, tests/conftest.py) take `sb.salesforce`:
    its `url`, where they log in, is the shared login URL (the first org's server), or with
    `own_login` the org's own instance (a My Domain login); the rest is the org's."""

    def __init__(self, org: SalesforceSide, own_login: bool = False) -> None:
        self._org = org
        self.url = org.url if own_login else org.login_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._org, name)


def tenant(sb: Sandbox, org: int = 0, portal: int = 0, *, own_login: bool = False) -> Sandbox:
    """The sandbox as its `org`th org and `portal`th portal see it, shaped as the suite's
    helpers take a sandbox (`salesforce`, `hubspot`, `ca_path`), so they serve any tenant."""
    view = SimpleNamespace(
        salesforce=_Org(sb.salesforce_orgs[org], own_login),
        hubspot=sb.hubspot_portals[portal],
        ca_path=sb.ca_path,
    )
    return cast(Sandbox, view)


def _soql(sb: Sandbox, instance: str, token: str, soql: str) -> requests.Response:
    return sf_session(sb).get(
        f"{instance}/services/data/v{API_VERSION}/query",
        params={"q": soql},
        headers={"Authorization": f"Bearer {token}"},
    )


def _deals(sb: Sandbox, token: str) -> tuple[int, dict[str, str]]:
    """The status and the deals (id -> name) of `GET /crm/v3/objects/deals` with `token`."""
    answer = sf_session(sb).get(
        sb.hubspot.url + "/crm/v3/objects/deals",
        params={"limit": "100", "properties": "dealname"},
        headers={"Authorization": f"Bearer {token}"},
    )
    if not answer.ok:
        return answer.status_code, {}
    return answer.status_code, {
        d["id"]: d["properties"]["dealname"] for d in answer.json()["results"]
    }


def _names(portal: HubSpotSide) -> dict[str, str]:
    return {str(i): d.properties["dealname"] for i, d in portal.portal.objects["deals"].items()}


# ---- the tests -----------------------------------------------------------------------------
def test_four_tenants_sync_into_one_store_each_with_its_own_deals(
    two_by_two: Sandbox, store: Store
) -> None:
    """Two orgs and two portals, four connections, one store: each gets exactly its deals."""
    sb = two_by_two
    org0, org1 = sb.salesforce_orgs
    assert org0 is sb.salesforce and sb.hubspot_portals[0] is sb.hubspot
    first, second = tenant(sb), tenant(sb, 1, 1)
    # different seeds: the tenants' data differ
    for crm in ("salesforce", "hubspot"):
        assert live_records(first, crm) != live_records(second, crm)
    # Salesforce ids are unique across orgs; HubSpot's ids are the portal's own
    assert not set(live_records(first, "salesforce")) & set(live_records(second, "salesforce"))
    connections = {
        "sf-a": (first, "salesforce", {}),
        "sf-b": (second, "salesforce", {"method": "jwt_bearer"}),
        "hs-a": (first, "hubspot", {}),
        "hs-b": (second, "hubspot", {}),
    }
    for name, (view, crm, how) in connections.items():
        summary = sync(store, connector(view, crm, name=name, **how))
        assert summary.status == "ok", (name, summary.error)
        assert summary.inserted == 60
        assert stored_records(store, name, crm) == live_records(view, crm), name
    # the second org was logged in to through the shared login URL, and its instance is its own
    assert org1.url != org0.url and org1.login_url == org0.url
    # each login is counted by the org it logged in to, though both came to the first's server
    assert org0.calls.counts()["oauth_token"] == org1.calls.counts()["oauth_token"] == 1


def test_a_token_is_refused_by_another_tenant(two_by_two: Sandbox) -> None:
    """An org's token on another org's instance is 401 INVALID_SESSION_ID; a portal's token
    sees only its portal's deals; an unknown token is 401."""
    sb = two_by_two
    org0, org1 = sb.salesforce_orgs
    login = sf_login(tenant(sb, 1))
    token = login["access_token"]
    assert login["instance_url"] == org1.url
    assert token.startswith(org1.credentials.org_id + "!")
    assert login["id"].startswith(f"{org1.url}/id/{org1.credentials.org_id}/")
    soql = "SELECT Id, Name FROM Opportunity"
    own = _soql(sb, org1.url, token, soql)
    assert own.status_code == 200
    mine = {r["Id"]: r["Name"] for r in own.json()["records"]}
    assert mine == {i: r["Name"] for i, r in org1.org.tables["Opportunity"].items()}
    assert mine != {i: r["Name"] for i, r in org0.org.tables["Opportunity"].items()}
    other = _soql(sb, org0.url, token, soql)
    assert other.status_code == 401
    assert other.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    # and the other way round, with the first org's token on the second org's instance
    first = sf_login(tenant(sb))["access_token"]
    assert _soql(sb, org1.url, first, soql).status_code == 401
    # logging in at an org's own instance (its My Domain) works only with its credentials
    assert sf_login(tenant(sb, 1, own_login=True))["instance_url"] == org1.url
    wrong = sf_session(sb).post(
        org1.url + "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": org0.credentials.client_id,
            "client_secret": org0.credentials.client_secret,
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"

    portal0, portal1 = sb.hubspot_portals
    status0, deals0 = _deals(sb, portal0.access_token)
    status1, deals1 = _deals(sb, portal1.access_token)
    assert status0 == status1 == 200
    assert deals0 == _names(portal0) and deals1 == _names(portal1) and deals0 != deals1
    deal = portal1.admin_create("deals", {"dealname": "Only in the second portal"})
    assert _deals(sb, portal1.access_token)[1][deal] == "Only in the second portal"
    assert _deals(sb, portal0.access_token)[1] == deals0
    status, _ = _deals(sb, "pat-na1-not-a-token")
    assert status == 401


def test_calls_quota_and_faults_are_per_tenant(two_by_two: Sandbox, store: Store) -> None:
    """A tenant's calls, quota and faults are its own: one out of quota does not stop another."""
    sb = two_by_two
    org0, org1 = sb.salesforce_orgs
    portal0, portal1 = sb.hubspot_portals
    summary = sync(store, sf_connector(tenant(sb, 1), name="sf-b"))
    assert summary.status == "ok"
    assert org1.calls.total() == summary.api_calls > 0
    assert org0.calls.total() == 0 and org0.calls.daily_used == 0
    # the second org has spent its day; the first has not
    org1.calls.set_daily_used(org1.calls.quota.daily_limit)
    assert sync(store, sf_connector(tenant(sb), name="sf-a")).status == "ok"
    stopped = sync(store, sf_connector(tenant(sb, 1), name="sf-b"), full=True)
    assert stopped.status == "stopped"
    assert org0.calls.daily_remaining > 0 and org1.calls.daily_remaining == 0
    # a fault on the first portal does not touch the second
    portal0.faults.add(Fault("server_error", endpoint="deals.*", times=None))
    ok = sync(store, hs_connector(tenant(sb, portal=1), "hs-b"))
    assert ok.status == "ok" and portal1.calls.total() == ok.api_calls
    assert portal0.calls.total() == 0
    # each portal's admin endpoints, over HTTP, by hub id
    http = sf_session(sb)
    for portal in (portal0, portal1):
        answer = http.get(f"{sb.hubspot.url}/__sandbox/portals/{portal.hub_id}/calls")
        assert answer.json()["total"] == portal.calls.total()
    assert http.get(f"{sb.hubspot.url}/__sandbox/portals/1/calls").status_code == 404


def test_tenants_info_reaches_every_tenant_from_json(two_by_two: Sandbox) -> None:
    """`tenants_info` is JSON, and what it lists logs in to and reads each tenant."""
    sb = two_by_two
    info = json.loads(json.dumps(sb.tenants_info()))
    assert info["ca_path"] == str(sb.ca_path)
    http = sf_session(sb)
    for side, org in zip(sb.salesforce_orgs, info["salesforce_orgs"], strict=True):
        login = http.post(
            org["login_url"] + "/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": org["client_id"],
                "client_secret": org["client_secret"],
                "username": org["username"],
                "password": org["password"] + org["security_token"],
            },
        ).json()
        assert login["instance_url"] == org["instance_url"] == side.url
        for token in (login["access_token"], org["access_token"]):
            answer = _soql(sb, org["instance_url"], token, "SELECT COUNT() FROM Opportunity")
            assert answer.json()["totalSize"] == len(side.org.tables["Opportunity"])
        assert http.get(org["admin_url"] + "/calls").json()["total"] == side.calls.total()
    for side, portal in zip(sb.hubspot_portals, info["hubspot_portals"], strict=True):
        assert _deals(sb, portal["access_token"])[1] == _names(side)
        assert http.get(portal["admin_url"] + "/calls").json()["total"] == side.calls.total()


def test_a_sandbox_added_to_while_running_serves_the_new_tenants(sandbox: Sandbox) -> None:
    """`add_salesforce_org` and `add_hubspot_portal` on a running sandbox serve at once."""
    org = sandbox.add_salesforce_org(opportunities=5, seed=99)
    portal = sandbox.add_hubspot_portal(opportunities=7)
    assert org is sandbox.salesforce_orgs[1]
    token = sf_login(tenant(sandbox, 1))["access_token"]
    answer = _soql(sandbox, org.url, token, "SELECT COUNT() FROM Opportunity")
    assert answer.json()["totalSize"] == 5
    # a new record takes the org's own pod in its id, as the generated ones do
    account = org.admin_create("Account", {"Name": "New in the second org"})
    assert account[3:5] == next(iter(org.org.tables["Opportunity"]))[3:5] != "8d"
    status, deals = _deals(sandbox, portal.access_token)
    assert status == 200 and deals == _names(portal) and len(deals) == 7


def test_twenty_tenants_start_and_every_one_answers() -> None:
    """10 orgs and 10 portals in one process: each logs in and answers with its own data."""
    started = time.perf_counter()
    sb = make_sandbox(opportunities=50, salesforce_orgs=10, hubspot_portals=10)
    seconds = time.perf_counter() - started
    try:
        print(f"\n10 orgs and 10 portals of 50 deals each started in {seconds:.2f} s")
        assert len(sb.salesforce_orgs) == len(sb.hubspot_portals) == 10
        seen_orgs = set()
        ids = [set(org.org.tables["Opportunity"]) for org in sb.salesforce_orgs]
        assert len(set().union(*ids)) == 10 * 50
        for index, org in enumerate(sb.salesforce_orgs):
            login = sf_login(tenant(sb, index))
            assert login["instance_url"] == org.url
            answer = _soql(sb, org.url, login["access_token"], "SELECT Id, Name FROM Opportunity")
            assert answer.status_code == 200
            names = frozenset(r["Name"] for r in answer.json()["records"])
            assert len(answer.json()["records"]) == 50
            seen_orgs.add(names)
        seen_portals = set()
        for portal in sb.hubspot_portals:
            status, deals = _deals(sb, portal.access_token)
            assert status == 200 and deals == _names(portal) and len(deals) == 50
            seen_portals.add(frozenset(deals.values()))
        assert len(seen_orgs) == len(seen_portals) == 10  # every tenant's data is its own
        assert len({o.url for o in sb.salesforce_orgs}) == 10
        assert len({p.access_token for p in sb.hubspot_portals}) == 10
    finally:
        sb.stop()
