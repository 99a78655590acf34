"""The sandbox's /composite resource: conditional row updates, each answered on its own."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsync.sandbox import Sandbox
from crmsync.sandbox.clock import parse_datetime
from tests.conftest import sf_client


def _patch(rid: str, value: str, since: str | None = None, ref: str = "r") -> dict[str, Any]:
    sub: dict[str, Any] = {
        "method": "PATCH",
        "url": f"/services/data/v59.0/sobjects/Opportunity/{rid}",
        "referenceId": ref,
        "body": {"CRMSync_Flags__c": value},
    }
    if since is not None:
        sub["httpHeaders"] = {"If-Unmodified-Since": since}
    return sub


def test_if_unmodified_since_refuses_a_newer_record_and_keeps_the_rest(sandbox: Sandbox) -> None:
    """A record modified after the header's date answers 412 PRECONDITION_FAILED and is left as
    it is; the other subrequests of the call are applied (allOrNone false); a bad date is 400."""
    sf = sf_client(sandbox)
    org = sandbox.salesforce.org
    a, b, c = list(org.tables["Opportunity"])[:3]
    read_at = parse_datetime(org.tables["Opportunity"][a]["LastModifiedDate"])
    sandbox.clock.advance(timedelta(seconds=5))
    org.update("Opportunity", b, {"CRMSync_Flags__c": "rep"}, system=True)  # edited after
    since = format_datetime(read_at + timedelta(seconds=1), usegmt=True)
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": False,
            "compositeRequest": [
                _patch(a, "stale", since, "ra"),
                _patch(b, "stale", since, "rb"),
                _patch(c, "stale", "yesterday", "rc"),
            ],
        },
    )
    got = {r["referenceId"]: r for r in answer["compositeResponse"]}
    assert got["ra"]["httpStatusCode"] == 204
    assert got["rb"]["httpStatusCode"] == 412
    assert got["rb"]["body"][0]["errorCode"] == "PRECONDITION_FAILED"
    assert got["rc"]["httpStatusCode"] == 400
    opps = org.tables["Opportunity"]
    assert opps[a]["CRMSync_Flags__c"] == "stale"
    assert opps[b]["CRMSync_Flags__c"] == "rep"
    assert opps[c].get("CRMSync_Flags__c") != "stale"


def test_more_than_25_subrequests_are_refused_whole(sandbox: Sandbox) -> None:
    """The Composite resource takes at most 25 subrequests; more is refused, nothing applied."""
    sf = sf_client(sandbox)
    ids = list(sandbox.salesforce.org.tables["Opportunity"])[:26]
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful(
            "composite",
            method="POST",
            json={
                "allOrNone": False,
                "compositeRequest": [_patch(i, "x", ref=f"r{n}") for n, i in enumerate(ids)],
            },
        )
    assert all(
        sandbox.salesforce.org.tables["Opportunity"][i].get("CRMSync_Flags__c") != "x" for i in ids
    )


def _get(url: str, ref: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    sub: dict[str, Any] = {"method": "GET", "url": url, "referenceId": ref}
    if headers:
        sub["httpHeaders"] = headers
    return sub


def test_reads_in_one_call_query_all_and_get_deleted(sandbox: Sandbox) -> None:
    """A queryAll (batch size from its httpHeaders, soft deletes included) and a getDeleted
    window in one /composite call: each answered as its own call would be, one call counted."""
    sf = sf_client(sandbox)
    org = sandbox.salesforce.org
    soft, hard = list(org.tables["Opportunity"])[:2]
    org.delete("Opportunity", soft)
    org.delete("Opportunity", hard, hard=True)
    sandbox.clock.advance(timedelta(minutes=2))
    now = sandbox.clock.now()
    start = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    end = now.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    sandbox.salesforce.calls.reset()
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": False,
            "compositeRequest": [
                _get(
                    "/services/data/v59.0/queryAll?q=SELECT+Id,+IsDeleted+FROM+Opportunity",
                    "q",
                    {"Sforce-Query-Options": "batchSize=200"},
                ),
                _get(
                    "/services/data/v59.0/sobjects/Opportunity/deleted/?"
                    + urlencode({"start": start, "end": end}),
                    "d",
                ),
                _get("/services/data/v59.0/query?q=SELEC+nothing", "bad"),
            ],
        },
    )
    got = {r["referenceId"]: r for r in answer["compositeResponse"]}
    assert got["q"]["httpStatusCode"] == 200
    page = got["q"]["body"]
    assert len(page["records"]) == 200 and not page["done"]  # 249 records left, 200 a page
    assert page["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    assert got["d"]["httpStatusCode"] == 200
    assert {r["id"] for r in got["d"]["body"]["deletedRecords"]} == {soft, hard}
    assert got["bad"]["httpStatusCode"] == 400
    assert got["bad"]["body"][0]["errorCode"] == "MALFORMED_QUERY"
    assert sandbox.salesforce.calls.counts() == {"composite": 1}
    rest = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] and len(page["records"]) + len(rest["records"]) == 249
    assert soft in {r["Id"] for r in page["records"] + rest["records"] if r["IsDeleted"]}


def test_more_than_five_query_operations_are_refused(sandbox: Sandbox) -> None:
    """At most 5 of a composite call's subrequests may be queries (Query, QueryAll, next pages)."""
    sf = sf_client(sandbox)
    subs = [_get("/services/data/v59.0/query?q=SELECT+Id+FROM+User", f"q{i}") for i in range(6)]
    with pytest.raises(SalesforceMalformedRequest, match="LIMIT_EXCEEDED"):
        sf.restful("composite", method="POST", json={"allOrNone": False, "compositeRequest": subs})
