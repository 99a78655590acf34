"""The v3 object routes, one object at a time: list (paged by id, `archived`), get, create, update,
archive, and search.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.hubspot.base import HubSpotBase, multi
from crmsync.sandbox.hubspot.portal import PortalError
from crmsync.sandbox.hubspot.search import SearchError, compile_search, run_search
from crmsync.sandbox.web import json_response

LIST_LIMIT = 100
HISTORY_LIST_LIMIT = 50


class ObjectRoutes(HubSpotBase):
    """list, get, create, update, archive and search."""

    # object type -> ((table size, newest id) when sorted, the ids in ascending order)
    id_order: dict[str, tuple[tuple[int, int], list[int]]]

    def ordered_ids(self, kind: str) -> list[int]:
        """Ids in ascending order, cached until the table's size or newest id changes (a hard
        delete followed by a create keeps the size)."""
        table = self.portal.objects[kind]
        version = (len(table), next(reversed(table), 0))
        cached = self.id_order.get(kind)
        if cached is None or cached[0] != version:
            ids = list(table)
            if any(a > b for a, b in itertools.pairwise(ids)):
                ids.sort()
            cached = (version, ids)
            self.id_order[kind] = cached
        return cached[1]

    def on_list(self, request: Request, otype: str) -> Response:
        kind = self.object_kind(otype)
        try:
            limit = int(request.args.get("limit", 10))
        except ValueError:
            return self.error(400, "VALIDATION_ERROR", "limit must be an integer")
        if limit < 1 or limit > LIST_LIMIT:
            return self.error(
                400, "VALIDATION_ERROR", f"limit must be between 1 and {LIST_LIMIT}; got {limit}"
            )
        archived = request.args.get("archived", "false").lower() == "true"
        props = multi(request, "properties")
        history = multi(request, "propertiesWithHistory")
        assoc = multi(request, "associations")
        if history:
            limit = min(limit, HISTORY_LIST_LIMIT)
        after_raw = request.args.get("after")
        after = 0
        if after_raw:
            if not after_raw.isdigit():
                return self.error(400, "VALIDATION_ERROR", f"Invalid after: {after_raw}")
            after = int(after_raw)
        results: list[dict[str, Any]] = []
        next_after: int | None = None
        with self.portal.lock:
            ids = self.ordered_ids(kind)
            table = self.portal.objects[kind]
            pos = bisect.bisect_right(ids, after) if after else 0
            while pos < len(ids):
                rec = table.get(ids[pos])
                pos += 1
                if rec is None or rec.archived != archived:
                    continue
                if len(results) == limit:
                    next_after = int(results[-1]["id"])
                    break
                results.append(self.render_record(kind, rec, props, history, assoc))
        body: dict[str, Any] = {"results": results}
        if next_after is not None:
            base = request.base_url
            body["paging"] = {
                "next": {"after": str(next_after), "link": f"{base}?after={next_after}"}
            }
        return json_response(body)

    def find(self, request: Request, kind: str, key: str) -> Any:
        """The record `key` names: its id, or with `?idProperty=p` its unique property `p`.

        HubSpot's single-object GET and PATCH take `idProperty` to address a record by a
        property with unique values (CRM objects API, "Retrieve"/"Update": `{objectId}` is the
        value of `idProperty` when given). Answers the record or an error Response.
        """
        archived = request.args.get("archived", "false").lower() == "true"
        id_property = request.args.get("idProperty")
        rec = None
        if id_property and id_property != "hs_object_id":
            try:
                rec = self.portal.find_unique(kind, id_property, key)
            except PortalError as e:
                return self.error(e.status, e.category, e.message)
            if rec is not None and rec.archived != archived:
                rec = None
        elif key.isdigit():
            rec = self.portal.get(kind, int(key), archived=archived)
        if rec is None:
            return self.error(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [key]},
            )
        return rec

    def on_get(self, request: Request, otype: str, oid: str) -> Response:
        kind = self.object_kind(otype)
        rec = self.find(request, kind, oid)
        if isinstance(rec, Response):
            return rec
        with self.portal.lock:
            body = self.render_record(
                kind,
                rec,
                multi(request, "properties"),
                multi(request, "propertiesWithHistory"),
                multi(request, "associations"),
            )
        return json_response(body)

    def on_create(self, request: Request, otype: str) -> Response:
        kind = self.object_kind(otype)
        body = self.json_body(request)
        try:
            links = self.links(kind, body.get("associations") or [])
            rec = self.portal.create(kind, body.get("properties") or {})
        except PortalError as e:
            return self.error(e.status, e.category, e.message)
        for to_type, to_id, type_id in links:
            self.portal.associate(kind, rec.id, to_type, to_id, type_id)
        return json_response(self.render_record(kind, rec, list(body.get("properties") or [])), 201)

    def on_update(self, request: Request, otype: str, oid: str) -> Response:
        kind = self.object_kind(otype)
        body = self.json_body(request)
        found = self.find(request, kind, oid)
        if isinstance(found, Response):
            return found
        try:
            rec = self.portal.update(kind, found.id, body.get("properties") or {})
        except PortalError as e:
            return self.error(e.status, e.category, e.message)
        return json_response(self.render_record(kind, rec, list(body.get("properties") or [])))

    def on_archive(self, request: Request, otype: str, oid: str) -> Response:
        kind = self.object_kind(otype)
        if oid.isdigit():
            self.portal.archive(kind, int(oid))
        return Response(status=204)

    def on_search(self, request: Request, otype: str) -> Response:
        kind = self.object_kind(otype)
        body = self.json_body(request)
        try:
            search = compile_search(kind, body)
        except SearchError as e:
            return self.error(400, "VALIDATION_ERROR", str(e))
        with self.portal.lock:
            total, page = run_search(search, self.portal.searchable(kind))
            results = [self.render_record(kind, r, search.properties) for r in page]
        out: dict[str, Any] = {"total": total, "results": results}
        end = search.after + len(page)
        if page and end < total and end < 10_000:
            # `link` is a string or absent, never null (the OpenAPI `NextPage` of CRM search);
            # search answers carry no link, so it is left out.
            out["paging"] = {"next": {"after": str(end)}}
        return json_response(out)
