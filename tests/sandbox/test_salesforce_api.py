"""simple-salesforce, unmodified, against the sandbox org: auth, SOQL paging, writes, faults."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crmsync.sandbox import Fault, Sandbox
from crmsync.sandbox.clock import sf_datetime
from crmsync.sandbox.salesforce.values import RecordError
from tests.conftest import NOW, sf_client, sf_login, sf_session

BATCH_200 = {"Sforce-Query-Options": "batchSize=200"}


# ---- OAuth -------------------------------------------------------------------------------
def _token(sb: Sandbox, **form: str) -> requests.Response:
    return sf_session(sb).post(sb.salesforce.url + "/services/oauth2/token", data=form)


def test_password_grant_returns_token_and_instance_url(sandbox: Sandbox) -> None:
    """The password grant answers with an access token and the instance URL."""
    token = sf_login(sandbox)
    assert token["instance_url"] == sandbox.salesforce.url
    assert token["access_token"].startswith("00D")


def test_client_credentials_and_refresh_token_grants(sandbox: Sandbox) -> None:
    """Client credentials and refresh token grants both issue working tokens."""
    c = sandbox.salesforce.credentials
    for form in (
        {
            "grant_type": "client_credentials",
            "client_id": c.client_id,
            "client_secret": c.client_secret,
        },
        {
            "grant_type": "refresh_token",
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "refresh_token": c.refresh_token,
        },
    ):
        answer = _token(sandbox, **form)
        assert answer.status_code == 200, answer.text
        assert answer.json()["instance_url"] == sandbox.salesforce.url


def test_jwt_bearer_grant_checks_signature_and_claims(sandbox: Sandbox) -> None:
    """A JWT signed with the app's key is accepted; a wrong audience or key is refused."""
    c = sandbox.salesforce.credentials
    key = sandbox.salesforce.jwt_private_key_path.read_bytes()  # type: ignore[union-attr]
    claims = {
        "iss": c.client_id,
        "sub": c.username,
        "aud": sandbox.salesforce.url,
        "exp": int(time.time()) + 300,
    }
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ok = _token(sandbox, grant_type=grant, assertion=jwt.encode(claims, key, algorithm="RS256"))
    assert ok.status_code == 200, ok.text
    bad_aud = jwt.encode({**claims, "aud": "https://example.com"}, key, algorithm="RS256")
    refused = _token(sandbox, grant_type=grant, assertion=bad_aud)
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant", "error_description": "audience is invalid"}
    forged = jwt.encode(claims, "not-the-key-" * 4, algorithm="HS256")
    assert _token(sandbox, grant_type=grant, assertion=forged).json()["error"] == "invalid_grant"


def test_wrong_password_gets_oauth_error_shape(sandbox: Sandbox) -> None:
    """Token endpoint errors use OAuth's error/error_description, not the REST error array."""
    c = sandbox.salesforce.credentials
    answer = _token(
        sandbox,
        grant_type="password",
        client_id=c.client_id,
        client_secret=c.client_secret,
        username=c.username,
        password="nope",
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "authentication failure",
    }


# ---- SOQL --------------------------------------------------------------------------------
def test_query_pages_through_every_record(sandbox: Sandbox) -> None:
    """query + queryMore with batchSize=200 visit each opportunity exactly once, in order."""
    sf = sf_client(sandbox)
    first = sf.query("SELECT Id, Name FROM Opportunity ORDER BY Id", headers=BATCH_200)
    assert first["totalSize"] == 250 and first["done"] is False
    assert len(first["records"]) == 200
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    ids = [
        r["Id"]
        for r in sf.query_all_iter("SELECT Id FROM Opportunity ORDER BY Id", headers=BATCH_200)
    ]
    expected = sorted(r["Id"] for r in sandbox.salesforce.org.tables["Opportunity"].values())
    assert ids == expected


def test_batch_size_is_clamped_to_salesforce_range(sandbox: Sandbox) -> None:
    """batchSize below 200 is raised to 200; without the header pages hold up to 2000."""
    sf = sf_client(sandbox)
    small = sf.query("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=5"})
    assert len(small["records"]) == 200
    assert len(sf.query("SELECT Id FROM Opportunity")["records"]) == 250


def test_relationship_fields_come_back_nested(sandbox: Sandbox) -> None:
    """Owner.Name and Account.Name arrive as nested objects with attributes."""
    sf = sf_client(sandbox)
    rec = sf.query(
        "SELECT Id, Owner.Name, Account.Name FROM Opportunity WHERE AccountId != null LIMIT 1"
    )["records"][0]
    assert rec["attributes"]["type"] == "Opportunity"
    assert rec["Owner"]["attributes"]["type"] == "User"
    assert isinstance(rec["Owner"]["Name"], str)
    assert rec["Account"]["attributes"]["type"] == "Account"


def test_queryall_sees_soft_deleted_rows_query_does_not(sandbox: Sandbox) -> None:
    """A soft-deleted opportunity shows in queryAll with IsDeleted=true and not in query."""
    sf = sf_client(sandbox)
    victim = next(iter(sandbox.salesforce.org.tables["Opportunity"]))
    sf.Opportunity.delete(victim)
    soql = f"SELECT Id, IsDeleted FROM Opportunity WHERE Id = '{victim}'"
    assert sf.query(soql)["records"] == []
    rows = sf.query(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(victim, True)]


def test_where_on_datetimes_with_ties_and_order_by_two_fields(sandbox: Sandbox) -> None:
    """Records sharing one SystemModstamp are all found with >= and ordered by (stamp, Id)."""
    sf = sf_client(sandbox)
    ids = list(sandbox.salesforce.org.tables["Opportunity"])[:30]
    stamp = NOW + timedelta(minutes=5)
    sandbox.salesforce.touch("Opportunity", ids, stamp.isoformat())
    rows = sf.query(
        f"SELECT Id, SystemModstamp FROM Opportunity WHERE SystemModstamp >= "
        f"{stamp.strftime('%Y-%m-%dT%H:%M:%SZ')} ORDER BY SystemModstamp, Id"
    )["records"]
    assert [r["Id"] for r in rows] == sorted(ids)
    assert {r["SystemModstamp"] for r in rows} == {sf_datetime(stamp)}


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Nope FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT Id FROM Nothing", "INVALID_TYPE"),
    ],
)
def test_bad_soql_raises_malformed_request_with_salesforce_error(
    sandbox: Sandbox, soql: str, code: str
) -> None:
    """Bad SOQL answers 400 with Salesforce's error array, raised by the client as such."""
    sf = sf_client(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.status == 400
    assert info.value.content[0]["errorCode"] == code


def test_unknown_query_locator_is_refused(sandbox: Sandbox) -> None:
    """An invalid nextRecordsUrl answers INVALID_QUERY_LOCATOR."""
    sf = sf_client(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more("01g8d0000000000AAA-2000")
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_count_query(sandbox: Sandbox) -> None:
    """SELECT COUNT() answers totalSize with no records."""
    sf = sf_client(sandbox)
    answer = sf.query("SELECT COUNT() FROM Opportunity WHERE IsClosed = false")
    open_count = sum(
        1 for r in sandbox.salesforce.org.tables["Opportunity"].values() if not r["IsClosed"]
    )
    assert answer["totalSize"] == open_count and answer["records"] == []


# ---- sObjects ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Opportunity", "Task", "User", "Account", "OpportunityHistory"])
def test_describe(sandbox: Sandbox, name: str) -> None:
    """Each supported sObject describes with its fields."""
    sf = sf_client(sandbox)
    desc = getattr(sf, name).describe()
    assert desc["name"] == name
    assert {"Id", "CreatedDate"} <= {f["name"] for f in desc["fields"]}


def test_get_create_update_and_if_unmodified_since(sandbox: Sandbox) -> None:
    """Create, read and update a task; an update guarded by an old date is refused with 412."""
    sf = sf_client(sandbox)
    opp = next(iter(sandbox.salesforce.org.tables["Opportunity"].values()))
    created = sf.Task.create(
        {
            "Subject": "Call",
            "WhatId": opp["Id"],
            "OwnerId": opp["OwnerId"],
            "ActivityDate": "2026-12-01",
        }
    )
    assert created["success"] is True
    task = sf.Task.get(created["id"])
    assert task["Subject"] == "Call" and task["Status"] == "Not Started"
    assert sf.Task.update(created["id"], {"Priority": "High"}) == 204
    sandbox.clock.advance(timedelta(seconds=5))
    sf.Opportunity.update(opp["Id"], {"NextStep": "edited by a rep"})
    with pytest.raises(SalesforceGeneralError) as info:
        sf.Opportunity.update(
            opp["Id"],
            {"NextStep": "crmsync"},
            headers={"If-Unmodified-Since": "Fri, 20 Nov 2026 12:00:00 GMT"},
        )
    assert info.value.status == 412
    assert sandbox.salesforce.org.get("Opportunity", opp["Id"])["NextStep"] == "edited by a rep"


def test_create_reports_field_errors(sandbox: Sandbox) -> None:
    """Writing an unknown or read-only field fails with Salesforce's error codes."""
    sf = sf_client(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Task.create({"Subject": "x", "Bogus__c": 1})
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Task.create({"Subject": "x", "IsClosed": True})
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_get_deleted(sandbox: Sandbox) -> None:
    """getDeleted lists soft and hard deletes in the window."""
    sf = sf_client(sandbox)
    soft, hard = list(sandbox.salesforce.org.tables["Opportunity"])[:2]
    sf.Opportunity.delete(soft)
    sandbox.salesforce.admin_delete("Opportunity", hard, hard=True)
    answer = sf.Opportunity.deleted(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert {r["id"] for r in answer["deletedRecords"]} == {soft, hard}
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get(hard)


def test_get_deleted_window_rules(sandbox: Sandbox) -> None:
    """getDeleted truncates seconds, wants more than one minute between start and end, at most
    15 days back, and names in latestDateCovered where the next window starts."""
    sf = sf_client(sandbox)
    victim = next(iter(sandbox.salesforce.org.tables["Opportunity"]))
    sf.Opportunity.delete(victim)
    for start, end in [
        (NOW - timedelta(seconds=59), NOW),
        (NOW - timedelta(seconds=1), NOW.replace(second=59)),  # 60 s apart once cut
        (NOW, NOW - timedelta(minutes=5)),
        (NOW - timedelta(days=15, minutes=1), NOW),
    ]:
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.Opportunity.deleted(start, end)
        assert info.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    answer = sf.Opportunity.deleted(NOW - timedelta(minutes=2), NOW + timedelta(days=1))
    assert [r["id"] for r in answer["deletedRecords"]] == [victim]
    covered = answer["latestDateCovered"]
    assert covered == NOW.strftime("%Y-%m-%dT%H:%M:00.000+0000")  # now, cut to the minute
    earlier = sf.Opportunity.deleted(NOW - timedelta(minutes=10), NOW - timedelta(minutes=2))
    assert earlier["deletedRecords"] == []
    assert earlier["latestDateCovered"] == (NOW - timedelta(minutes=2)).strftime(
        "%Y-%m-%dT%H:%M:00.000+0000"
    )


def test_stage_change_writes_history_and_derived_fields(sandbox: Sandbox) -> None:
    """Changing StageName updates IsClosed/IsWon/Probability and adds an OpportunityHistory row."""
    sf = sf_client(sandbox)
    opp = next(
        r for r in sandbox.salesforce.org.tables["Opportunity"].values() if not r["IsClosed"]
    )
    before = sf.query(
        f"SELECT COUNT() FROM OpportunityHistory WHERE OpportunityId = '{opp['Id']}'"
    )["totalSize"]
    sf.Opportunity.update(opp["Id"], {"StageName": "Closed Won", "Amount": 1000})
    after = sf.Opportunity.get(opp["Id"])
    assert (after["IsClosed"], after["IsWon"], after["Probability"]) == (True, True, 100.0)
    rows = sf.query(
        f"SELECT StageName, PrevAmount, Amount FROM OpportunityHistory WHERE "
        f"OpportunityId = '{opp['Id']}' ORDER BY CreatedDate DESC"
    )
    assert rows["totalSize"] == before + 1
    assert rows["records"][0]["StageName"] == "Closed Won"


# ---- sObject Collections -----------------------------------------------------------------
def _tasks(sb: Sandbox, n: int) -> list[dict[str, object]]:
    opp = next(iter(sb.salesforce.org.tables["Opportunity"].values()))
    return [
        {
            "attributes": {"type": "Task"},
            "Subject": f"t{i}",
            "WhatId": opp["Id"],
            "OwnerId": opp["OwnerId"],
        }
        for i in range(n)
    ]


def test_collections_create_with_mixed_results(sandbox: Sandbox) -> None:
    """allOrNone=false: one injected validation failure, the rest succeed, in request order."""
    sf = sf_client(sandbox)
    sandbox.salesforce.faults.add(
        Fault("record_error", endpoint="collections_create", code="validation")
    )
    records = _tasks(sandbox, 5)
    records[3]["Bogus__c"] = "x"
    results = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}
    )
    assert [r["success"] for r in results] == [False, True, True, False, True]
    assert results[0]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert results[3]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert all(r["id"] for r in results if r["success"])


def test_collections_all_or_none_rolls_back(sandbox: Sandbox) -> None:
    """allOrNone=true with one bad record writes nothing and reports the roll-back."""
    sf = sf_client(sandbox)
    before = len(sandbox.salesforce.org.tables["Task"])
    records = _tasks(sandbox, 3)
    records[1]["ActivityDate"] = "not-a-date"
    results = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
    )
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]
    assert len(sandbox.salesforce.org.tables["Task"]) == before


def test_collections_update_row_lock_and_deleted(sandbox: Sandbox) -> None:
    """Updates report UNABLE_TO_LOCK_ROW (injected) and ENTITY_IS_DELETED per record."""
    sf = sf_client(sandbox)
    a, b, c = list(sandbox.salesforce.org.tables["Opportunity"])[:3]
    sf.Opportunity.delete(c)
    sandbox.salesforce.faults.add(
        Fault("record_error", endpoint="collections_update", code="row_lock", record_ids=[b])
    )
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Opportunity"}, "id": i, "CRMSync_Flags__c": "stale"}
                for i in (a, b, c)
            ],
        },
    )
    assert results[0] == {"id": a, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert results[2]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_collections_refuse_more_than_200(sandbox: Sandbox) -> None:
    """More than 200 records in one collections call is refused whole."""
    sf = sf_client(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful(
            "composite/sobjects",
            method="POST",
            json={"allOrNone": False, "records": _tasks(sandbox, 201)},
        )
    assert info.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


# ---- limits and faults -------------------------------------------------------------------
def test_limits_and_limit_info_header(sandbox: Sandbox) -> None:
    """The limits resource and Sforce-Limit-Info agree, and simple-salesforce parses the header."""
    sf = sf_client(sandbox)
    sandbox.salesforce.calls.set_daily_used(4000)
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 1_000_000
    sf.query("SELECT Id FROM User LIMIT 1")
    assert sf.api_usage["api-usage"].used == 4002
    assert sf.api_usage["api-usage"].total == 1_000_000


def test_rate_limit_fault_is_a_concurrency_limit_403(sandbox: Sandbox) -> None:
    """Salesforce sends concurrency limits as 403 REQUEST_LIMIT_EXCEEDED (the daily limit's code)
    with "ConcurrentPerOrgLongTxn Limit exceeded"; the fault fires only the given times."""
    sf = sf_client(sandbox)
    sandbox.salesforce.faults.add(Fault("rate_limit", endpoint="query", retry_after=2))
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM User")
    assert info.value.status == 403
    [error] = info.value.content
    assert error["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert error["message"] == "ConcurrentPerOrgLongTxn Limit exceeded."
    assert sf.query("SELECT Id FROM User")["done"] is True


def test_server_unavailable_fault(sandbox: Sandbox) -> None:
    """503 surfaces as SalesforceGeneralError with the status."""
    sf = sf_client(sandbox)
    sandbox.salesforce.faults.add(Fault("unavailable", endpoint="query"))
    with pytest.raises(SalesforceGeneralError) as info:
        sf.query("SELECT Id FROM User")
    assert info.value.status == 503


def test_expired_session_until_new_login(sandbox: Sandbox) -> None:
    """INVALID_SESSION_ID 401 keeps failing with the old token and works after a new login."""
    sf = sf_client(sandbox)
    sandbox.salesforce.faults.add(Fault("expired_session", endpoint="query"))
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.query("SELECT Id FROM User")
    assert info.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User")
    assert sf_client(sandbox).query("SELECT Id FROM User")["done"] is True


def test_daily_limit_reached(sandbox: Sandbox) -> None:
    """Once the daily allowance is spent every call answers 403 REQUEST_LIMIT_EXCEEDED."""
    sf = sf_client(sandbox)
    sandbox.salesforce.calls.set_daily_used(1_000_000)
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM User")
    assert info.value.content[0] == {
        "message": "TotalRequests Limit exceeded.",
        "errorCode": "REQUEST_LIMIT_EXCEEDED",
    }


def test_dropped_connection_and_slow_answer(sandbox: Sandbox) -> None:
    """A dropped connection raises ConnectionError; a slow answer trips the client's timeout."""
    sf = sf_client(sandbox)
    sandbox.salesforce.faults.add(Fault("drop", endpoint="query"))
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT Id FROM User")
    sandbox.salesforce.faults.add(Fault("slow", endpoint="query", delay=0.5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.query("SELECT Id FROM User", timeout=0.1)


def test_faults_at_a_rate_are_seeded(sandbox: Sandbox) -> None:
    """A rate fault fires on roughly that share of calls, the same calls for the same seed."""
    sf = sf_client(sandbox)
    sandbox.salesforce.faults.add(Fault("unavailable", endpoint="query", rate=0.5))
    outcomes = []
    for _ in range(40):
        try:
            sf.query("SELECT Id FROM User LIMIT 1")
            outcomes.append(True)
        except SalesforceGeneralError:
            outcomes.append(False)
    assert 8 <= outcomes.count(False) <= 32


# ---- call counting -----------------------------------------------------------------------
def test_call_counts_match_requests_made(sandbox: Sandbox) -> None:
    """Every request the client sends is counted once under its endpoint, faults included."""
    session = sf_session(sandbox)
    sent: list[str] = []
    session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request.method))
    sf = sf_client(sandbox, session)
    sandbox.salesforce.calls.reset()
    sent.clear()
    sandbox.salesforce.faults.add(Fault("unavailable", endpoint="sobject_get"))
    list(sf.query_all_iter("SELECT Id FROM Opportunity", headers=BATCH_200))
    opp = next(iter(sandbox.salesforce.org.tables["Opportunity"]))
    with pytest.raises(SalesforceGeneralError):
        sf.Opportunity.get(opp)
    sf.Opportunity.get(opp)
    sf.Task.describe()
    sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": False, "records": _tasks(sandbox, 3)},
    )
    counts = sandbox.salesforce.calls.counts()
    assert counts == {
        "query": 1,
        "query_more": 1,
        "sobject_get": 2,
        "sobject_describe": 1,
        "collections_create": 1,
    }
    assert sum(counts.values()) == len(sent) == 6


def test_amounts_past_the_cap_and_non_json_numbers_are_refused(sandbox: Sandbox) -> None:
    """Amount is capped (currency(16, 2)): 1e309 or 1e17 is a field error, never stored, and
    `Infinity`/`NaN`, which are not JSON, are refused as unparsable; nothing serves them."""
    session = sf_session(sandbox)
    token = sf_login(sandbox, session)
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    session.headers["Content-Type"] = "application/json"
    opp = next(iter(sandbox.salesforce.org.tables["Opportunity"]))
    url = f"{token['instance_url']}/services/data/v59.0/sobjects/Opportunity/{opp}"
    before = sandbox.salesforce.org.tables["Opportunity"][opp]["Amount"]
    for text in ('{"Amount": 1e309}', '{"Amount": -1e17}'):
        answer = session.patch(url, data=text)
        assert answer.status_code == 400
        [error] = answer.json()
        assert error["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"
        assert error["fields"] == ["Amount"]
    for text in ('{"Amount": Infinity}', '{"Amount": NaN}'):
        answer = session.patch(url, data=text)
        assert answer.status_code == 400
        assert answer.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert sandbox.salesforce.org.tables["Opportunity"][opp]["Amount"] == before
    assert session.patch(url, data='{"Amount": 9999999999999999.99}').status_code == 400
    assert session.patch(url, data='{"Amount": 999999999999999.99}').status_code == 204
    with pytest.raises(RecordError) as refused:
        sandbox.salesforce.admin_update("Opportunity", opp, {"Amount": float("inf")})
    assert refused.value.status_code == "NUMBER_OUTSIDE_VALID_RANGE"


def test_a_last_activity_change_updates_system_modstamp(sandbox: Sandbox) -> None:
    """Completing a task moves its opportunity's LastActivityDate, and with it SystemModstamp
    (Salesforce help 000387261), though not LastModifiedDate: an incremental query sees it."""
    sf = sf_client(sandbox)
    opp = next(
        r for r in sandbox.salesforce.org.tables["Opportunity"].values() if not r["IsClosed"]
    )
    modified = opp["LastModifiedDate"]
    sandbox.clock.advance(timedelta(days=2))
    day = sandbox.clock.now().date().isoformat()
    task = sf.Task.create(
        {"WhatId": opp["Id"], "Subject": "call", "ActivityDate": day, "OwnerId": opp["OwnerId"]}
    )["id"]
    sf.Task.update(task, {"Status": "Completed"})
    assert opp["LastActivityDate"] == day
    assert opp["SystemModstamp"] == sf_datetime(sandbox.clock.now())
    assert opp["LastModifiedDate"] == modified
    since = (sandbox.clock.now() - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = sf.query(f"SELECT Id FROM Opportunity WHERE SystemModstamp >= {since}")
    assert opp["Id"] in {r["Id"] for r in found["records"]}
