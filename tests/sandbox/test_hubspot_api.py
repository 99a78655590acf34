"""hubspot-api-client, unmodified, against the sandbox portal: objects, search, batch, faults."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import urllib3
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.deals import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
)
from hubspot.crm.deals.exceptions import ApiException, ServiceException, UnauthorizedException
from hubspot.crm.objects.tasks import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.tasks.exceptions import ApiException as TaskApiException
from hubspot.crm.owners.exceptions import ApiException as OwnerApiException

from crmsync.sandbox import Fault, Sandbox
from crmsync.sandbox.clock import epoch_ms
from crmsync.sandbox.hubspot.portal import SEARCH_DELAY
from tests.conftest import NOW, hs_client, make_sandbox


def _deal_ids(sb: Sandbox, archived: bool = False) -> list[int]:
    return sorted(
        i for i, r in sb.hubspot.portal.objects["deals"].items() if r.archived == archived
    )


def _search(**body: object) -> PublicObjectSearchRequest:
    return PublicObjectSearchRequest(**body)


# ---- objects ----------------------------------------------------------------------------
def test_list_pages_through_every_deal(sandbox: Sandbox) -> None:
    """The deals list endpoint pages by `after` and returns each live deal once."""
    hs = hs_client(sandbox)
    seen, after = [], None
    while True:
        page = hs.crm.deals.basic_api.get_page(
            limit=100, after=after, properties=["dealname", "amount"]
        )
        seen += [int(d.id) for d in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == _deal_ids(sandbox)
    assert set(page.results[0].properties) >= {"dealname", "amount", "hs_object_id"}


def test_list_archived_returns_only_archived(sandbox: Sandbox) -> None:
    """archived=true lists archived deals, which the default list leaves out."""
    hs = hs_client(sandbox)
    victim = _deal_ids(sandbox)[0]
    hs.crm.deals.basic_api.archive(str(victim))
    archived = hs.crm.deals.basic_api.get_page(limit=100, archived=True)
    assert [int(d.id) for d in archived.results] == _deal_ids(sandbox, archived=True)
    assert victim in [int(d.id) for d in archived.results]
    assert archived.results[0].archived is True


def test_get_with_property_history(sandbox: Sandbox) -> None:
    """propertiesWithHistory returns past values newest first, the newest equal to the current."""
    hs = hs_client(sandbox)
    deal_id = _deal_ids(sandbox)[0]
    hs.crm.deals.basic_api.update(
        str(deal_id), SimplePublicObjectInput(properties={"dealstage": "contractsent"})
    )
    deal = hs.crm.deals.basic_api.get_by_id(
        str(deal_id), properties=["dealstage"], properties_with_history=["dealstage"]
    )
    history = deal.properties_with_history["dealstage"]
    assert history[0].value == "contractsent" == deal.properties["dealstage"]
    assert len(history) >= 2


def test_paths_by_object_type_id(sandbox: Sandbox) -> None:
    """The generic objects API reaches deals as 0-3 and tasks as 0-27."""
    hs = hs_client(sandbox)
    page = hs.crm.objects.basic_api.get_page(object_type="0-3", limit=5)
    assert len(page.results) == 5
    assert hs.crm.objects.basic_api.get_page(object_type="0-27", limit=5).results is not None


def test_pipelines_owners_properties(sandbox: Sandbox) -> None:
    """Pipelines with stages, owners and deal properties deserialize in the real client."""
    hs = hs_client(sandbox)
    pipelines = hs.crm.pipelines.pipelines_api.get_all(object_type="deals").results
    assert {p.id for p in pipelines} == {"default", "renewals"}
    stage = pipelines[0].stages[0]
    assert stage.metadata["isClosed"] == "false" and float(stage.metadata["probability"]) > 0
    owners = hs.crm.owners.owners_api.get_page(limit=500).results
    assert owners and all(o.email for o in owners)
    archived = hs.crm.owners.owners_api.get_page(limit=500, archived=True).results
    assert all(o.archived for o in archived)
    props = hs.crm.properties.core_api.get_all(object_type="deals").results
    assert {"dealstage", "economic_buyer", "hs_lastmodifieddate"} <= {p.name for p in props}


# ---- search -----------------------------------------------------------------------------
def test_search_filters_sorts_and_pages(sandbox: Sandbox) -> None:
    """Search by modification time, sorted by numeric id, paged by `after`, sees all matches."""
    hs = hs_client(sandbox)
    ids = _deal_ids(sandbox)[:130]
    sandbox.hubspot.touch("deals", [str(i) for i in ids], (NOW + timedelta(hours=1)).isoformat())
    filters = {
        "filter_groups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GTE",
                        "value": str(epoch_ms(NOW + timedelta(minutes=30))),
                    }
                ]
            }
        ]
    }
    found, after = [], None
    while True:
        page = hs.crm.deals.search_api.do_search(
            _search(
                **filters,
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=["dealname"],
                limit=50,
                after=after,
            )
        )
        assert page.total == 130
        found += [int(d.id) for d in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert found == ids


def test_search_compares_ids_as_numbers(sandbox: Sandbox) -> None:
    """hs_object_id GTE compares as integers (string comparison would put 10 before 9)."""
    hs = hs_client(sandbox)
    ids = _deal_ids(sandbox)
    pivot = ids[100]
    page = hs.crm.deals.search_api.do_search(
        _search(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "hs_object_id", "operator": "GTE", "value": str(pivot)}
                    ]
                }
            ],
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            limit=200,
        )
    )
    assert [int(d.id) for d in page.results] == ids[100:]


def test_search_or_groups_in_operator(sandbox: Sandbox) -> None:
    """Filter groups are ORed, filters inside a group ANDed; IN matches any listed value."""
    hs = hs_client(sandbox)
    page = hs.crm.deals.search_api.do_search(
        _search(
            filter_groups=[
                {
                    "filters": [
                        {
                            "propertyName": "dealstage",
                            "operator": "IN",
                            "values": ["closedwon", "closedlost"],
                        }
                    ]
                },
                {"filters": [{"propertyName": "pipeline", "operator": "EQ", "value": "renewals"}]},
            ],
            limit=200,
        )
    )
    expected = {
        i
        for i, r in sandbox.hubspot.portal.objects["deals"].items()
        if r.properties["dealstage"] in ("closedwon", "closedlost")
        or r.properties["pipeline"] == "renewals"
    }
    assert page.total == len(expected)


def test_search_limit_over_200_and_after_past_10000_are_refused(sandbox: Sandbox) -> None:
    """limit > 200 and after >= 10,000 answer 400 VALIDATION_ERROR."""
    hs = hs_client(sandbox)
    for body in ({"limit": 201}, {"limit": 100, "after": "10000"}):
        with pytest.raises(ApiException) as info:
            hs.crm.deals.search_api.do_search(_search(**body))
        assert info.value.status == 400
        assert '"category":"VALIDATION_ERROR"' in info.value.body


@pytest.mark.slow
def test_search_stops_at_10000_results() -> None:
    """Paging one query over 10,050 matches yields 10,000 results and then a 400."""
    sb = make_sandbox(opportunities=10_050)
    try:
        hs = hs_client(sb)
        got, after = 0, None
        while True:
            page = hs.crm.deals.search_api.do_search(_search(limit=200, after=after))
            assert page.total == 10_050
            got += len(page.results)
            if page.paging is None:
                break
            after = page.paging.next.after
        assert got == 10_000
        with pytest.raises(ApiException) as info:
            hs.crm.deals.search_api.do_search(_search(limit=200, after="10000"))
        assert info.value.status == 400
    finally:
        sb.stop()


def test_search_index_lags_writes() -> None:
    """With an indexing delay, search sees a change only once the delay has passed."""
    sb = make_sandbox(opportunities=20, search_delay=5)
    try:
        hs = hs_client(sb)
        deal = _deal_ids(sb)[0]
        hs.crm.deals.basic_api.update(
            str(deal), SimplePublicObjectInput(properties={"dealname": "Renamed Deal"})
        )
        query = _search(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "dealname", "operator": "EQ", "value": "Renamed Deal"}
                    ]
                }
            ]
        )
        assert hs.crm.deals.search_api.do_search(query).total == 0
        sb.clock.advance(timedelta(seconds=6))
        assert hs.crm.deals.search_api.do_search(query).total == 1
    finally:
        sb.stop()


# ---- batch and tasks ----------------------------------------------------------------------
def test_batch_create_tasks_with_associations(sandbox: Sandbox) -> None:
    """Tasks created in one batch call are linked to their deals (216) both ways."""
    hs = hs_client(sandbox)
    deals = _deal_ids(sandbox)[:3]
    inputs = [
        SimplePublicObjectInputForCreate(
            properties={
                "hs_task_subject": f"Follow up {d}",
                "hs_timestamp": "2026-12-01T09:00:00Z",
                "hs_task_priority": "HIGH",
                "hubspot_owner_id": None,
            },
            associations=[
                {
                    "to": {"id": str(d)},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}],
                }
            ],
        )
        for d in deals
    ]
    answer = hs.crm.objects.tasks.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
    )
    assert answer.status == "COMPLETE" and len(answer.results) == 3
    links = hs.crm.associations.v4.batch_api.get_page(
        from_object_type="deals",
        to_object_type="tasks",
        batch_input_public_fetch_associations_batch_request=(
            BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": str(d)} for d in deals])
        ),
    )
    task_ids = {int(t.id) for t in answer.results}
    linked = {int(to.to_object_id) for r in links.results for to in r.to}
    assert linked == task_ids


def test_task_create_requires_timestamp_and_can_be_completed(sandbox: Sandbox) -> None:
    """A task without hs_timestamp is refused; a created one can be searched and completed."""
    hs = hs_client(sandbox)
    with pytest.raises(TaskApiException) as info:
        hs.crm.objects.tasks.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"hs_task_subject": "no due date"})
        )
    assert info.value.status == 400
    task = hs.crm.objects.tasks.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "hs_task_subject": "due",
                "hs_timestamp": "2026-12-01T09:00:00Z",
                "crmsync_key": "wf:rule:123:1",
            }
        )
    )
    by_key = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "crmsync_key", "operator": "EQ", "value": "wf:rule:123:1"}
                ]
            }
        ]
    }
    # the search index lags writes by default (SEARCH_DELAY seconds of the sandbox clock)
    assert hs.crm.objects.tasks.search_api.do_search(by_key).results == []
    sandbox.clock.advance(timedelta(seconds=SEARCH_DELAY))
    found = hs.crm.objects.tasks.search_api.do_search(by_key)
    assert [t.id for t in found.results] == [task.id]
    done = hs.crm.objects.tasks.basic_api.update(
        task.id, SimplePublicObjectInput(properties={"hs_task_status": "COMPLETED"})
    )
    assert done.properties["hs_task_status"] == "COMPLETED"


def _raw(sb: Sandbox) -> requests.Session:
    """A plain HTTP session on the portal, to see the wire answers the client library hides."""
    http = requests.Session()
    http.trust_env = False
    http.verify = str(sb.ca_path)
    http.headers["Authorization"] = f"Bearer {sb.hubspot.access_token}"
    return http


def test_search_next_page_has_no_null_link(sandbox: Sandbox) -> None:
    """`paging.next.link` is a string or absent, never null (OpenAPI `NextPage`)."""
    answer = _raw(sandbox).post(
        f"{sandbox.hubspot.url}/crm/v3/objects/deals/search", json={"limit": 5}
    )
    body = answer.json()
    assert answer.status_code == 200 and body["total"] > 5
    assert body["paging"]["next"] == {"after": "5"}


def test_get_and_update_by_unique_id_property(sandbox: Sandbox) -> None:
    """GET/PATCH /crm/v3/objects/tasks/{key}?idProperty=crmsync_key address a task by its key."""
    hs = hs_client(sandbox)
    task = hs.crm.objects.tasks.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"hs_timestamp": "2026-12-01T09:00:00Z", "crmsync_key": "wf:r:9:1"}
        )
    )
    got = hs.crm.objects.tasks.basic_api.get_by_id(
        "wf:r:9:1", id_property="crmsync_key", properties=["crmsync_key"]
    )
    assert got.id == task.id and got.properties["crmsync_key"] == "wf:r:9:1"
    done = hs.crm.objects.tasks.basic_api.update(
        "wf:r:9:1",
        SimplePublicObjectInput(properties={"hs_task_status": "COMPLETED"}),
        id_property="crmsync_key",
    )
    assert done.id == task.id
    stored = sandbox.hubspot.portal.objects["tasks"][int(task.id)]
    assert stored.properties["hs_task_status"] == "COMPLETED"
    with pytest.raises(TaskApiException) as missing:
        hs.crm.objects.tasks.basic_api.get_by_id("wf:r:9:2", id_property="crmsync_key")
    assert missing.value.status == 404
    with pytest.raises(TaskApiException) as not_unique:
        hs.crm.objects.tasks.basic_api.get_by_id("x", id_property="hs_task_subject")
    assert not_unique.value.status == 400


def test_batch_naming_one_record_twice_is_refused(sandbox: Sandbox) -> None:
    """HubSpot refuses a batch update naming one record twice; nothing is applied."""
    a, b = (str(i) for i in _deal_ids(sandbox)[:2])
    answer = _raw(sandbox).post(
        f"{sandbox.hubspot.url}/crm/v3/objects/deals/batch/update",
        json={
            "inputs": [
                {"id": a, "properties": {"crmsync_flags": "stale"}},
                {"id": b, "properties": {"crmsync_flags": "gate"}},
                {"id": a, "properties": {"crmsync_flags": "gate;stale"}},
            ]
        },
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert "Duplicate IDs" in body["message"] and a in body["message"]
    deals = sandbox.hubspot.portal.objects["deals"]
    assert deals[int(a)].properties["crmsync_flags"] != "gate;stale"
    assert deals[int(b)].properties["crmsync_flags"] != "gate"


def test_batch_create_with_a_taken_unique_value_fails_whole(sandbox: Sandbox) -> None:
    """A taken unique value fails the whole batch create: 409 CONFLICT, first conflict only."""
    hs = hs_client(sandbox)
    first = hs.crm.objects.tasks.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"hs_timestamp": "2026-12-01T09:00:00Z", "crmsync_key": "k1"}
        )
    )
    before = len(sandbox.hubspot.portal.objects["tasks"])
    answer = _raw(sandbox).post(
        f"{sandbox.hubspot.url}/crm/v3/objects/tasks/batch/create",
        json={
            "inputs": [
                {"properties": {"hs_timestamp": "2026-12-01T09:00:00Z", "crmsync_key": "new"}},
                {"properties": {"hs_timestamp": "2026-12-01T09:00:00Z", "crmsync_key": "k1"}},
                {"properties": {"hs_timestamp": "2026-12-01T09:00:00Z", "crmsync_key": "new"}},
            ]
        },
    )
    assert answer.status_code == 409
    body = answer.json()
    assert body["category"] == "CONFLICT"
    assert body["message"].endswith(f"already exists with crmsync_key=k1. Existing ID: {first.id}")
    assert len(sandbox.hubspot.portal.objects["tasks"]) == before  # nothing created
    twice = _raw(sandbox).post(
        f"{sandbox.hubspot.url}/crm/v3/objects/tasks/batch/create",
        json={
            "inputs": [
                {"properties": {"hs_timestamp": "2026-12-01T09:00:00Z", "crmsync_key": "k2"}},
                {"properties": {"hs_timestamp": "2026-12-01T09:00:00Z", "crmsync_key": "k2"}},
            ]
        },
    )
    assert twice.status_code == 409 and twice.json()["category"] == "CONFLICT"
    assert len(sandbox.hubspot.portal.objects["tasks"]) == before


def test_batch_update_partial_failure_is_207(sandbox: Sandbox) -> None:
    """One record failing in a batch update yields 207 with errors, the others applied."""
    hs = hs_client(sandbox)
    a, b, c = (str(i) for i in _deal_ids(sandbox)[:3])
    sandbox.hubspot.faults.add(
        Fault("record_error", endpoint="deals.batch.update", code="row_lock", record_ids=[b])
    )
    hs.crm.deals.basic_api.archive(c)
    answer = hs.crm.deals.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"crmsync_flags": "stale"}} for i in (a, b, c)]
        )
    )
    assert answer.num_errors == 2
    assert {e.category for e in answer.errors} == {"CONFLICT", "OBJECT_NOT_FOUND"}
    assert [r.id for r in answer.results] == [a]
    assert sandbox.hubspot.portal.objects["deals"][int(a)].properties["crmsync_flags"] == "stale"


def test_batch_read_and_archive_and_limit(sandbox: Sandbox) -> None:
    """Batch read reports missing ids as errors; more than 100 inputs are refused."""
    hs = hs_client(sandbox)
    ids = [str(i) for i in _deal_ids(sandbox)[:2]]
    answer = hs.crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in [*ids, "999"]],
            properties=["dealname"],
            properties_with_history=["amount"],
        )
    )
    assert sorted(r.id for r in answer.results) == ids
    assert answer.errors[0].context == {"ids": ["999"]}
    with pytest.raises(ApiException) as info:
        hs.crm.deals.batch_api.read(
            BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids * 51], properties=[])
        )
    assert info.value.status == 400


# ---- faults, auth and headers -----------------------------------------------------------
def test_rate_limit_fault_body_and_headers(sandbox: Sandbox) -> None:
    """An injected 429 has HubSpot's body, with Retry-After only when asked for."""
    hs = hs_client(sandbox)
    sandbox.hubspot.faults.add(Fault("rate_limit", endpoint="deals.list"))
    with pytest.raises(ApiException) as info:
        hs.crm.deals.basic_api.get_page(limit=1)
    assert info.value.status == 429
    assert '"policyName":"TEN_SECONDLY_ROLLING"' in info.value.body
    assert "Retry-After" not in info.value.headers
    sandbox.hubspot.faults.add(Fault("rate_limit", endpoint="deals.list", retry_after=3))
    raw = urllib3.PoolManager(ca_certs=str(sandbox.ca_path)).request(
        "GET",
        sandbox.hubspot.url + "/crm/v3/objects/deals?limit=1",
        retries=False,
        headers={"Authorization": f"Bearer {sandbox.hubspot.access_token}"},
    )
    assert raw.status == 429 and raw.headers["Retry-After"] == "3"


def test_client_waits_out_retry_after_by_itself(sandbox: Sandbox) -> None:
    """hubspot-api-client's urllib3 retry honours Retry-After on a 429: one wait, then success."""
    hs = hs_client(sandbox)
    sandbox.hubspot.calls.reset()
    sandbox.hubspot.faults.add(Fault("rate_limit", endpoint="deals.list", retry_after=1))
    assert len(hs.crm.deals.basic_api.get_page(limit=1).results) == 1
    assert sandbox.hubspot.calls.counts() == {"deals.list": 2}


def test_daily_limit_and_expired_token_and_bad_token(sandbox: Sandbox) -> None:
    """DAILY 429, EXPIRED_AUTHENTICATION 401 and a wrong token's INVALID_AUTHENTICATION 401."""
    hs = hs_client(sandbox)
    sandbox.hubspot.faults.add(Fault("daily_limit", endpoint="deals.search"))
    with pytest.raises(ApiException) as info:
        hs.crm.deals.search_api.do_search(_search(limit=1))
    assert info.value.status == 429 and '"policyName":"DAILY"' in info.value.body
    sandbox.hubspot.faults.add(Fault("expired_session", endpoint="deals.list"))
    with pytest.raises(UnauthorizedException) as auth:
        hs.crm.deals.basic_api.get_page(limit=1)
    assert '"category":"EXPIRED_AUTHENTICATION"' in auth.value.body
    with pytest.raises(UnauthorizedException) as bad:
        hs_client(sandbox, token="pat-wrong").crm.deals.basic_api.get_page(limit=1)
    assert '"category":"INVALID_AUTHENTICATION"' in bad.value.body


def test_unavailable_and_dropped_connection(sandbox: Sandbox) -> None:
    """503 raises ServiceException; a dropped connection on a POST raises urllib3's error."""
    hs = hs_client(sandbox)
    sandbox.hubspot.faults.add(Fault("unavailable", endpoint="deals.list"))
    with pytest.raises(ServiceException):
        hs.crm.deals.basic_api.get_page(limit=1)
    sandbox.hubspot.faults.add(Fault("drop", endpoint="deals.search"))
    with pytest.raises(urllib3.exceptions.HTTPError):
        hs.crm.deals.search_api.do_search(_search(limit=1))


def test_rate_limit_headers_on_every_answer(sandbox: Sandbox) -> None:
    """Every answer carries the X-HubSpot-RateLimit headers, counting down."""
    hs = hs_client(sandbox)
    _, _, headers = hs.crm.deals.basic_api.get_page_with_http_info(limit=1)
    assert headers["X-HubSpot-RateLimit-Max"] == "190"
    remaining = int(headers["X-HubSpot-RateLimit-Remaining"])
    _, _, again = hs.crm.deals.basic_api.get_page_with_http_info(limit=1)
    assert int(again["X-HubSpot-RateLimit-Remaining"]) == remaining - 1
    assert int(again["X-HubSpot-RateLimit-Daily-Remaining"]) < 1_000_000


def test_enforced_ten_secondly_limit() -> None:
    """With limits enforced, the 191st call inside ten seconds answers 429."""
    sb = make_sandbox(opportunities=5, enforce_rate_limits=True)
    try:
        hs = hs_client(sb)
        for _ in range(190):
            hs.crm.owners.owners_api.get_page(limit=1)
        with pytest.raises(OwnerApiException) as info:
            hs.crm.owners.owners_api.get_page(limit=1)
        assert info.value.status == 429
    finally:
        sb.stop()


def test_call_counts_match_requests_made(sandbox: Sandbox) -> None:
    """Every request the client sends is counted once under its endpoint name."""
    hs = hs_client(sandbox)
    sandbox.hubspot.calls.reset()
    sandbox.hubspot.faults.add(Fault("unavailable", endpoint="deals.search"))
    after, pages = None, 0
    while True:
        page = hs.crm.deals.basic_api.get_page(limit=100, after=after)
        pages += 1
        if page.paging is None:
            break
        after = page.paging.next.after
    with pytest.raises(ServiceException):
        hs.crm.deals.search_api.do_search(_search(limit=10))
    hs.crm.deals.search_api.do_search(_search(limit=10))
    hs.crm.pipelines.pipelines_api.get_all(object_type="deals")
    assert sandbox.hubspot.calls.counts() == {
        "deals.list": pages,
        "deals.search": 2,
        "pipelines": 1,
    }
    assert pages == 3


def test_non_finite_numbers_are_refused(sandbox: Sandbox) -> None:
    """A number property takes no Infinity or NaN (JSON carries neither), nor NaN literals."""
    deal = _deal_ids(sandbox)[0]
    url = f"{sandbox.hubspot.url}/crm/v3/objects/deals/{deal}"
    http = _raw(sandbox)
    for body in ({"properties": {"amount": "1e309"}}, {"properties": {"amount": "NaN"}}):
        answer = http.patch(url, json=body)
        assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"
    literal = http.patch(
        url,
        data='{"properties": {"amount": Infinity}}',
        headers={"Content-Type": "application/json"},
    )
    assert literal.status_code == 400
    assert sandbox.hubspot.portal.objects["deals"][deal].properties["amount"] not in (
        "1e309",
        "NaN",
    )
