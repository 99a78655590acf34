"""Reading deals: full pulls through the list endpoint, incremental pulls through id-paged search
windows, archived deals as deletions, and the ids and re-reads a reconcile pass needs.

A full pull pages the deals list (100 a call) by id; an incremental pull searches a closed time
window `[since - overlap, query start]` and pages inside it by numeric `hs_object_id`
(GT last id, ascending), so the search API's 10,000-result cap never truncates a sync. Archived
deals arrive through the list endpoint with `archived=true`, read only when a count of live deals
says some may have gone (`DealReader._close`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from hubspot.crm.deals import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest

from crmsync.connectors import cache
from crmsync.connectors.base import Page
from crmsync.connectors.hubspot_api import HubSpotApi, iso, ms, next_after, parse_time
from crmsync.connectors.hubspot_reference import Reference
from crmsync.model.mapping import Mapping
from crmsync.model.normalize import NormalizeError, normalize, set_aside
from crmsync.model.records import Cursor

LIST_LIMIT = 100
KEPT = ("live", "scanned", "archived_since")  # what a window's cursor carries to the next one
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
        """Changed deals since `cursor` (every live one when None), then the archived ones when
        the live count says some may be missing (see `_close`)."""
        state = json.loads(cursor.value) if cursor is not None else {"mode": "full"}
        if state.get("mode") == "full":
            yield from self._pull_full(state)
        else:
            yield from self._pull_window(state)

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
                    **self.api.raw,
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
                final = {"mode": "incremental", "since": started}
                yield from self._close(page, final, {}, created=0, full=True)
                return

    def _pull_window(self, state: dict[str, Any]) -> Iterator[Page]:
        """Deals modified in [since - overlap, until], paged by id so no cap applies.

        The window closes at the portal's time just before its first search; with cached
        reference data that search is the sync's first call, so it runs open-ended and the
        window closes at its answer's Date (later pages add the upper bound; a deal modified
        in between is read again by the next window, which starts `overlap` earlier)."""
        since = parse_time(state["since"])
        low = since - timedelta(seconds=self.api.settings.overlap_seconds)
        until = parse_time(state["until"]) if state.get("until") else None
        last_id = int(state.get("after_id") or 0)
        keep = {k: state[k] for k in KEPT if k in state}
        created = int(state.get("created") or 0)
        props = self.properties()
        while True:
            filters = [
                {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(ms(low))},
                {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
            ]
            if until is not None:
                filters.append(
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "LTE",
                        "value": str(ms(until)),
                    }
                )
            request = PublicObjectSearchRequest(
                filter_groups=[{"filters": filters}],
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=props,
                limit=self.search_limit,
            )
            body = self.api.call(
                "search",
                lambda r=request: self.api.deals.search_api.do_search(  # type: ignore[misc]
                    r, **self.api.raw
                ),
            )
            if until is None:
                until = self.api.now() - timedelta(seconds=1)
            results = body["results"]
            page = self.page(results)
            created += sum(1 for r in results if _created_in(r, since, until))
            if results:
                last_id = int(results[-1]["id"])
            if len(results) < self.search_limit:
                final = {"mode": "incremental", "since": iso(until)}
                yield from self._close(page, final, keep, created=created, full=False)
                return
            page.cursor = Cursor(
                json.dumps(
                    {
                        "mode": "incremental",
                        "since": iso(since),
                        "until": iso(until),
                        "after_id": last_id,
                        "created": created,
                        **keep,
                    }
                ),
                (),
            )
            yield page

    def _close(
        self,
        page: Page,
        final: dict[str, Any],
        keep: dict[str, Any],
        *,
        created: int,
        full: bool,
    ) -> Iterator[Page]:
        """The last page of records, then archived deals when some may be missing.

        HubSpot's search never returns archived deals and the list endpoint neither sorts nor
        filters them (its parameters are limit, after, properties, propertiesWithHistory,
        associations, archived: developers.hubspot.com, CRM objects API "List"; Airbyte's
        source-hubspot reads them whole and filters archivedAt on its side for the same
        reason). So the pull counts the live deals created up to the window's end (one search,
        `total`): the last count, plus the deals this window saw created after the last
        window's end, equals it unless deals were archived (or hard deleted). Only then, at a
        full sync, without a count to compare with, or once `reference_refresh_seconds` passed
        since the last list (a restore and an archive in one window cancel out; a deal indexed
        late looks new), the archived list is read, and only deals archived since the last
        list (less the overlap) become deletions.
        """
        until = parse_time(final["since"])
        live = self._count_live(until)
        prior = keep.get("live")
        recent = _recent(keep.get("scanned"), self.api.settings.reference_refresh_seconds)
        if not full and isinstance(prior, int) and prior + created == live and recent:
            page.cursor = Cursor(json.dumps({**final, **keep, "live": live}), ())
            yield page
            return
        # no count in this cursor: a sync stopped during the list below lists again
        page.cursor = Cursor(json.dumps(final), ())
        yield page
        yield from self._pull_archived(final, live, None if full else keep.get("archived_since"))

    def _count_live(self, until: datetime) -> int:
        """Live deals created at or before `until` (one search; its `total`)."""
        request = PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "createdate", "operator": "LTE", "value": str(ms(until))}
                    ]
                }
            ],
            properties=["hs_object_id"],
            limit=1,
        )
        body = self.api.call(
            "count",
            lambda: self.api.deals.search_api.do_search(request, **self.api.raw),
        )
        return int(body["total"])

    def _pull_archived(
        self, final: dict[str, Any], live: int, archived_since: str | None
    ) -> Iterator[Page]:
        """Archived deals (HubSpot's deletes) from the list endpoint, 100 a call; those archived
        before the last list (less the overlap) are left out: they were deleted then."""
        overlap = timedelta(seconds=self.api.settings.overlap_seconds)
        low = parse_time(archived_since) - overlap if archived_since else None
        newest = parse_time(archived_since) if archived_since else None
        chunk: list[str] = []
        after = None
        while True:
            body = self.api.call(
                "list_archived",
                lambda a=after: self.api.deals.basic_api.get_page(  # type: ignore[misc]
                    limit=LIST_LIMIT,
                    after=a,
                    properties=["hs_object_id"],
                    archived=True,
                    **self.api.raw,
                ),
            )
            for r in body["results"]:
                at = _archived_at(r)
                if at is not None and (newest is None or at > newest):
                    newest = at
                if low is None or at is None or at >= low:
                    chunk.append(str(r["id"]))
            after = next_after(body)
            if not after:
                break
            if len(chunk) >= LIST_LIMIT:
                yield Page(deleted_ids=chunk, fetched=len(chunk))
                chunk = []
        state = {
            **final,
            "live": live,
            "scanned": cache.wall_now().isoformat(),
            "archived_since": iso(newest) if newest else None,
        }
        yield Page(deleted_ids=chunk, fetched=len(chunk), cursor=Cursor(json.dumps(state), ()))

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
                    **self.api.raw,
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
                    r, **self.api.raw
                ),
            )
            yield self.page(body["results"])

    def page(self, results: list[dict[str, Any]]) -> Page:
        """Deals as the API gave them, normalized; the unusable ones set aside with why."""
        page = Page(fetched=len(results))
        derived = self.reference.deriver()  # read before the records, as a pull does
        now = self.api.now()
        for rec in results:
            props = rec["properties"]
            values: dict[str, Any] = dict(props)
            values.update(derived(props))
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


def _created_in(rec: dict[str, Any], since: datetime, until: datetime) -> bool:
    """Whether the deal was created in (since, until] (after the last window's count)."""
    raw = (rec.get("properties") or {}).get("createdate") or rec.get("createdAt")
    try:
        created = parse_time(str(raw)) if raw else None
    except NormalizeError:
        return True  # unknown: counted as new, so the counts differ and archived deals are read
    return created is not None and since < created <= until


def _archived_at(rec: dict[str, Any]) -> datetime | None:
    raw = rec.get("archivedAt")
    try:
        return parse_time(str(raw)) if raw else None
    except NormalizeError:
        return None


def _recent(scanned: Any, refresh_seconds: float) -> bool:
    """Whether the archived list was read less than `refresh_seconds` ago (wall clock)."""
    if not isinstance(scanned, str):
        return False
    try:
        age = cache.wall_now() - datetime.fromisoformat(scanned)
    except ValueError:
        return False
    return timedelta(0) <= age < timedelta(seconds=refresh_seconds)
