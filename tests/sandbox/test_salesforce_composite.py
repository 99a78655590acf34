"""The sandbox's /composite resource: conditional row updates, each answered on its own."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime
from typing import Any

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
