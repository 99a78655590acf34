"""Reading deals: full pulls through the list endpoint, incremental pulls through id-paged search
windows, archived deals as deletions, and the ids and re-reads a reconcile pass needs.

A full pull pages the deals list (100 a call) by id; an incremental pull searches a closed time
window `[since - overlap, query start]` and pages inside it by numeric `hs_object_id`
(GT last id, ascending), so the search API's 10,000-result cap never truncates a sync. Archived
deals arrive through the list endpoint with `archived=true`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from hubspot.crm.deals import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest

from crmsync.connectors.base import Page
from crmsync.connectors.hubspot_api import HubSpotApi, iso, ms, next_after, parse_time
from crmsync.connectors.hubspot_reference import Reference
from crmsync.model.mapping import Mapping
from crmsync.model.normalize import NormalizeError, normalize, set_aside
from crmsync.model.records import Cursor

LIST_LIMIT = 100
SEARCH_LIMIT = 200
BATCH_LIMIT = 100


class DealReader:
    """Pages of normalized deals from one portal, under crmsync's JSON window cursor."""

    def __init__(
        self, api: HubSpotApi, mapping: Mapping, reference: Reference, search_limit: int
    ) -> None:
        self.api = api
        self.mapping = mapping
        self.reference = reference
        self.search_limit = search_limit

    def properties(self) -> list[str]:
        """The deal properties a read asks for: the bookkeeping ones, then every mapped one."""
        props = ["hs_lastmodifieddate", "dealstage", "pipeline", "hubspot_owner_id"]
        for name in self.mapping.crm_fields():
            if name not in props:
                props.append(name)
        return props

    def pull(self, cursor: Cursor | None) -> Iterator[Page]:
        """Changed deals since `cursor` (every live one when None), then the archived ones."""
        state = json.loads(cursor.value) if cursor is not None else {"mode": "full"}
        self.reference.forget()  # owners and stages change: read them each sync
        self.reference.stages()
        self.reference.owners()  # reference data first: their answers also tell the CRM's time
        if state.get("mode") == "full":
            yield from self._pull_full(state)
        else:
            yield from self._pull_window(state)
        yield from self._pull_archived()

    def _pull_full(self, state: dict[str, Any]) -> Iterator[Page]:
        """Every live deal through the list endpoint, resumable after any page."""
        after = state.get("after")
        started = state.get("started")
        props = self.properties()
        while True:
            body = self.api.call(
                "list",
                lambda a=after: self.api.deals.basic_api.get_page(  # type: ignore[misc]
                    limit=LIST_LIMIT,
                    after=a,
                    properties=props,
                    archived=False,
                    _preload_content=False,
                ),
            )
            if started is None:
                started = iso(self.api.now() - timedelta(seconds=1))
            page = self.page(body["results"])
            after = next_after(body)
            if after:
                page.cursor = Cursor(
                    json.dumps({"mode": "full", "after": after, "started": started}), ()
                )
                yield page
            else:
                page.cursor = Cursor(json.dumps({"mode": "incremental", "since": started}), ())
                yield page
                return

    def _pull_window(self, state: dict[str, Any]) -> Iterator[Page]:
        """Deals modified in [since - overlap, until], paged by id so no cap applies."""
        since = parse_time(state["since"])
        low = since - timedelta(seconds=self.api.settings.overlap_seconds)
        until = parse_time(state["until"]) if state.get("until") else None
        last_id = int(state.get("after_id") or 0)
        if until is None:  # the window closes at the CRM's time, just before the first search
            until = self.api.now() - timedelta(seconds=1)
        props = self.properties()
        while True:
            request = PublicObjectSearchRequest(
                filter_groups=[
                    {
                        "filters": [
                            {
                                "propertyName": "hs_lastmodifieddate",
                                "operator": "GTE",
                                "value": str(ms(low)),
                            },
                            {
                                "propertyName": "hs_lastmodifieddate",
                                "operator": "LTE",
                                "value": str(ms(until)),
                            },
                            {
                                "propertyName": "hs_object_id",
                                "operator": "GT",
                                "value": str(last_id),
                            },
                        ]
                    }
                ],
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=props,
                limit=self.search_limit,
            )
            body = self.api.call(
                "search",
                lambda r=request: self.api.deals.search_api.do_search(  # type: ignore[misc]
                    r, _preload_content=False
                ),
            )
            results = body["results"]
            page = self.page(results)
            if results:
                last_id = int(results[-1]["id"])
            done = len(results) < self.search_limit
            state = (
                {"mode": "incremental", "since": iso(until)}
                if done
                else {
                    "mode": "incremental",
                    "since": iso(since),
                    "until": iso(until),
                    "after_id": last_id,
                }
            )
            page.cursor = Cursor(json.dumps(state), ())
            yield page
            if done:
                return

    def _pull_archived(self) -> Iterator[Page]:
        """Archived deals (HubSpot's deletes): the list endpoint is the only way to see them."""
        ids = list(self.list_ids(archived=True))
        for start in range(0, len(ids), LIST_LIMIT):
            chunk = ids[start : start + LIST_LIMIT]
            yield Page(deleted_ids=chunk, fetched=len(chunk))

    def list_ids(self, *, archived: bool) -> Iterator[str]:
        """Every deal id, live or archived, paging the list endpoint (100 a call)."""
        after = None
        while True:
            body = self.api.call(
                "list_archived" if archived else "list",
                lambda a=after: self.api.deals.basic_api.get_page(  # type: ignore[misc]
                    limit=LIST_LIMIT,
                    after=a,
                    properties=["hs_object_id"],
                    archived=archived,
                    _preload_content=False,
                ),
            )
            for r in body["results"]:
                yield str(r["id"])
            after = next_after(body)
            if not after:
                return

    def reread(self, ids: Sequence[str]) -> Iterator[Page]:
        """Full deals for `ids`, through batch read (100 a call)."""
        props = self.properties()
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            request = BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in chunk], properties=props, properties_with_history=[]
            )
            body = self.api.call(
                "batch_read",
                lambda r=request: self.api.deals.batch_api.read(  # type: ignore[misc]
                    r, _preload_content=False
                ),
            )
            yield self.page(body["results"])

    def page(self, results: list[dict[str, Any]]) -> Page:
        """Deals as the API gave them, normalized; the unusable ones set aside with why."""
        page = Page(fetched=len(results))
        self.reference.stages()  # read before the records, as a pull does
        self.reference.owners()
        now = self.api.now()
        for rec in results:
            props = rec["properties"]
            values: dict[str, Any] = dict(props)
            values.update(self.reference.derived(props))
            try:
                page.opportunities.append(
                    normalize(
                        self.api.connection,
                        str(rec["id"]),
                        values,
                        self.mapping,
                        stage_ids=(props.get("dealstage"),),
                        now=now,
                    )
                )
            except NormalizeError as e:
                page.set_aside.append(set_aside(str(rec["id"]), e, values))
        return page
