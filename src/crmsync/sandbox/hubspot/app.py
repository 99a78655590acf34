"""The HubSpot CRM subset the sandbox answers, in HubSpot's wire format.

v3 objects (deals, tasks, companies; by name or object type id): list with `archived`, get, create,
update, archive, search, batch read/create/update/archive; v3 pipelines, owners and properties;
`propertiesWithHistory`; v4 associations. Every answer carries the rate-limit headers.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from crmsync.sandbox.calls import CallLog
from crmsync.sandbox.clock import Clock, hs_datetime
from crmsync.sandbox.faults import RECORD_CODES, Fault, FaultInjector
from crmsync.sandbox.hubspot.portal import Portal, PortalError
from crmsync.sandbox.hubspot.records import HsOwner, HsRecord
from crmsync.sandbox.hubspot.schema import (
    ASSOCIATION_TYPES,
    DEFAULT_PROPERTIES,
    OBJECT_TYPE_IDS,
    PIPELINES,
    PROPERTIES,
    SINGULAR,
    object_type,
)
from crmsync.sandbox.hubspot.search import SearchError, compile_search, run_search
from crmsync.sandbox.web import CrmApp, Reply, correlation_id, json_response

BATCH_LIMIT = 100
LIST_LIMIT = 100
HISTORY_LIST_LIMIT = 50
PIPELINE_STAMP = "2024-01-01T00:00:00.000Z"


class HubSpotApp(CrmApp):
    crm = "hubspot"

    def __init__(
        self, portal: Portal, clock: Clock, calls: CallLog, faults: FaultInjector, access_token: str
    ) -> None:
        super().__init__(clock, calls, faults)
        self.portal = portal
        self.access_token = access_token
        self._order: dict[str, tuple[int, list[int]]] = {}

    # ---- routing ----------------------------------------------------------------------
    def routes(self) -> Iterable[Rule]:
        o = "/crm/v3/objects/<otype>"
        a4 = "/crm/v4/objects/<otype>/<oid>/associations"
        return [
            Rule(o, endpoint="list", methods=["GET"]),
            Rule(o, endpoint="create", methods=["POST"]),
            Rule(o + "/search", endpoint="search", methods=["POST"]),
            Rule(o + "/batch/<op>", endpoint="batch", methods=["POST"]),
            Rule(o + "/<oid>", endpoint="get", methods=["GET"]),
            Rule(o + "/<oid>", endpoint="update", methods=["PATCH"]),
            Rule(o + "/<oid>", endpoint="archive", methods=["DELETE"]),
            Rule("/crm/v3/pipelines/<otype>", endpoint="pipelines", methods=["GET"]),
            Rule("/crm/v3/pipelines/<otype>/<pid>", endpoint="pipeline", methods=["GET"]),
            Rule("/crm/v3/owners", endpoint="owners", methods=["GET"]),
            Rule("/crm/v3/owners/<owner_id>", endpoint="owner", methods=["GET"]),
            Rule("/crm/v3/properties/<otype>", endpoint="properties", methods=["GET"]),
            Rule("/crm/v3/properties/<otype>/<name>", endpoint="property", methods=["GET"]),
            Rule(a4 + "/<ttype>", endpoint="assoc_list", methods=["GET"]),
            Rule(a4 + "/<ttype>/<tid>", endpoint="assoc_put", methods=["PUT"]),
            Rule(a4 + "/default/<ttype>/<tid>", endpoint="assoc_put_default", methods=["PUT"]),
            Rule(
                "/crm/v4/associations/<otype>/<ttype>/batch/<op>",
                endpoint="assoc_batch",
                methods=["POST"],
            ),
        ]

    def endpoint_name(self, endpoint: str, args: dict[str, Any], request: Request) -> str:
        kind = object_type(str(args.get("otype", ""))) or str(args.get("otype", ""))
        if endpoint == "batch":
            return f"{kind}.batch.{args.get('op')}"
        if endpoint in ("list", "create", "search", "get", "update", "archive"):
            return f"{kind}.{endpoint}"
        if endpoint.startswith("assoc_batch"):
            return f"associations.batch.{args.get('op')}"
        if endpoint.startswith("assoc_"):
            return "associations." + endpoint[6:].replace("_default", "")
        return endpoint

    def is_search(self, name: str) -> bool:
        return name.endswith(".search")

    def over_limits(self, name: str, billable: bool, search: bool) -> str | None:
        if self.calls.over_daily():
            return "DAILY"
        return self.calls.over_window(search)

    # ---- wire details -----------------------------------------------------------------
    @staticmethod
    def error(status: int, category: str, message: str, **extra: Any) -> Response:
        body = {
            "status": "error",
            "message": message,
            "correlationId": correlation_id(),
            "category": category,
            **extra,
        }
        return json_response(body, status)

    def decorate(self, response: Response, name: str) -> None:
        q = self.calls.quota
        h = response.headers
        h["X-HubSpot-RateLimit-Daily"] = str(q.daily_limit)
        h["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.calls.daily_remaining)
        h["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int(q.window_seconds * 1000))
        h["X-HubSpot-RateLimit-Max"] = str(q.window_limit)
        h["X-HubSpot-RateLimit-Remaining"] = str(self.calls.window_remaining())
        h["X-HubSpot-RateLimit-Secondly"] = str(q.search_per_second)
        h["X-HubSpot-RateLimit-Secondly-Remaining"] = str(self.calls.search_remaining())

    def not_found(self, request: Request) -> Response:
        self.calls.record("not_found")
        return self.error(404, "OBJECT_NOT_FOUND", f"No route for {request.method} {request.path}")

    def rate_limited(self, policy: str) -> Response:
        names = {
            "DAILY": "daily",
            "TEN_SECONDLY_ROLLING": "ten_secondly_rolling",
            "SECONDLY": "secondly",
        }
        return json_response(
            {
                "status": "error",
                "message": f"You have reached your {names.get(policy, policy.lower())} limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": correlation_id(),
                "policyName": policy,
            },
            429,
        )

    def fault_response(self, fault: Fault, name: str) -> Response:
        if fault.kind == "rate_limit":
            resp = self.rate_limited("TEN_SECONDLY_ROLLING")
            if fault.retry_after:
                resp.headers["Retry-After"] = str(fault.retry_after).removesuffix(".0")
            return resp
        if fault.kind == "daily_limit":
            return self.rate_limited("DAILY")
        if fault.kind == "unavailable":
            return self.error(
                503,
                "SERVICE_UNAVAILABLE",
                fault.message or "The service is temporarily unavailable",
            )
        if fault.kind == "server_error":
            return self.error(500, "INTERNAL_ERROR", fault.message or "internal error")
        if fault.kind == "expired_session":
            return self.error(
                401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired."
            )
        raise AssertionError(fault.kind)

    def authenticate(self, request: Request, name: str) -> Response | None:
        if request.headers.get("Authorization", "") == f"Bearer {self.access_token}":
            return None
        return self.error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at "
            "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )

    # ---- helpers ----------------------------------------------------------------------
    def _type(self, raw: str) -> str:
        kind = object_type(raw)
        if kind is None:
            error = self.error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {raw}")
            raise Reply(error)
        return kind

    def _render(
        self,
        kind: str,
        rec: HsRecord,
        props: list[str] | None,
        history: list[str] | None = None,
        associations: list[str] | None = None,
    ) -> dict[str, Any]:
        names = props if props else DEFAULT_PROPERTIES[kind]
        defs = PROPERTIES[kind]
        chosen = {n: rec.properties.get(n) for n in names if n in defs}
        for n in ("hs_object_id", "createdate", "hs_lastmodifieddate"):
            chosen[n] = rec.properties.get(n)
        out: dict[str, Any] = {
            "id": str(rec.id),
            "properties": chosen,
            "createdAt": hs_datetime(rec.created_at),
            "updatedAt": hs_datetime(rec.updated_at),
            "archived": rec.archived,
        }
        if rec.archived and rec.archived_at is not None:
            out["archivedAt"] = hs_datetime(rec.archived_at)
        if history:
            out["propertiesWithHistory"] = {
                n: [_history_entry(v, when) for v, when in reversed(rec.history.get(n, []))]
                for n in history
                if n in defs
            }
        if associations:
            assoc: dict[str, Any] = {}
            for raw in associations:
                to = object_type(raw)
                if to is None:
                    continue
                links = self.portal.associated(kind, rec.id, to)
                if links:
                    label = f"{SINGULAR[kind]}_to_{SINGULAR[to]}"
                    assoc[to] = {"results": [{"id": str(i), "type": label} for i in links]}
            if assoc:
                out["associations"] = assoc
        return out

    def _ordered_ids(self, kind: str) -> list[int]:
        """Ids in ascending order, cached until the table's size changes."""
        table = self.portal.objects[kind]
        cached = self._order.get(kind)
        if cached is None or cached[0] != len(table):
            ids = list(table)
            if any(a > b for a, b in itertools.pairwise(ids)):
                ids.sort()
            cached = (len(table), ids)
            self._order[kind] = cached
        return cached[1]

    # ---- objects ----------------------------------------------------------------------
    def on_list(self, request: Request, otype: str) -> Response:
        kind = self._type(otype)
        try:
            limit = int(request.args.get("limit", 10))
        except ValueError:
            return self.error(400, "VALIDATION_ERROR", "limit must be an integer")
        if limit < 1 or limit > LIST_LIMIT:
            return self.error(
                400, "VALIDATION_ERROR", f"limit must be between 1 and {LIST_LIMIT}; got {limit}"
            )
        archived = request.args.get("archived", "false").lower() == "true"
        props = _multi(request, "properties")
        history = _multi(request, "propertiesWithHistory")
        assoc = _multi(request, "associations")
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
            ids = self._ordered_ids(kind)
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
                results.append(self._render(kind, rec, props, history, assoc))
        body: dict[str, Any] = {"results": results}
        if next_after is not None:
            base = request.base_url
            body["paging"] = {
                "next": {"after": str(next_after), "link": f"{base}?after={next_after}"}
            }
        return json_response(body)

    def on_get(self, request: Request, otype: str, oid: str) -> Response:
        kind = self._type(otype)
        archived = request.args.get("archived", "false").lower() == "true"
        rec = self.portal.get(kind, int(oid), archived=archived) if oid.isdigit() else None
        if rec is None:
            return self.error(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [oid]},
            )
        with self.portal.lock:
            body = self._render(
                kind,
                rec,
                _multi(request, "properties"),
                _multi(request, "propertiesWithHistory"),
                _multi(request, "associations"),
            )
        return json_response(body)

    def on_create(self, request: Request, otype: str) -> Response:
        kind = self._type(otype)
        body = self._json(request)
        try:
            links = self._links(kind, body.get("associations") or [])
            rec = self.portal.create(kind, body.get("properties") or {})
        except PortalError as e:
            return self.error(e.status, e.category, e.message)
        for to_type, to_id, type_id in links:
            self.portal.associate(kind, rec.id, to_type, to_id, type_id)
        return json_response(self._render(kind, rec, list(body.get("properties") or [])), 201)

    def on_update(self, request: Request, otype: str, oid: str) -> Response:
        kind = self._type(otype)
        body = self._json(request)
        if not oid.isdigit():
            return self.error(404, "OBJECT_NOT_FOUND", "Object not found")
        try:
            rec = self.portal.update(kind, int(oid), body.get("properties") or {})
        except PortalError as e:
            return self.error(e.status, e.category, e.message)
        return json_response(self._render(kind, rec, list(body.get("properties") or [])))

    def on_archive(self, request: Request, otype: str, oid: str) -> Response:
        kind = self._type(otype)
        if oid.isdigit():
            self.portal.archive(kind, int(oid))
        return Response(status=204)

    def on_search(self, request: Request, otype: str) -> Response:
        kind = self._type(otype)
        body = self._json(request)
        try:
            search = compile_search(kind, body)
        except SearchError as e:
            return self.error(400, "VALIDATION_ERROR", str(e))
        with self.portal.lock:
            total, page = run_search(search, self.portal.searchable(kind))
            results = [self._render(kind, r, search.properties) for r in page]
        out: dict[str, Any] = {"total": total, "results": results}
        end = search.after + len(page)
        if page and end < total and end < 10_000:
            out["paging"] = {"next": {"after": str(end), "link": None}}
        return json_response(out)

    # ---- batch ------------------------------------------------------------------------
    def on_batch(self, request: Request, otype: str, op: str) -> Response:
        kind = self._type(otype)
        body = self._json(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            return self.error(400, "VALIDATION_ERROR", "inputs: must be an array")
        if len(inputs) > BATCH_LIMIT:
            return self.error(
                400,
                "VALIDATION_ERROR",
                f"Too many inputs: {len(inputs)}; the limit is {BATCH_LIMIT}",
            )
        started = hs_datetime(self.clock.now())
        name = f"{kind}.batch.{op}"
        if op == "read":
            try:
                results, errors = self._batch_read(kind, body, inputs)
            except PortalError as e:
                return self.error(400, e.category, e.message)
            status_ok = 200
        elif op == "create":
            results, errors, problem = self._batch_create(kind, inputs, name)
            if problem is not None:
                return problem
            status_ok = 201
        elif op == "update":
            results, errors, problem = self._batch_update(kind, inputs, name)
            if problem is not None:
                return problem
            status_ok = 200
        elif op == "archive":
            for item in inputs:
                oid = str((item or {}).get("id", ""))
                if oid.isdigit():
                    self.portal.archive(kind, int(oid))
            return Response(status=204)
        else:
            return self.error(404, "OBJECT_NOT_FOUND", f"Unknown batch operation: {op}")
        out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": hs_datetime(self.clock.now()),
        }
        if errors:
            out["numErrors"] = len(errors)
            out["errors"] = errors
            return json_response(out, 207)
        return json_response(out, status_ok)

    def _batch_read(
        self, kind: str, body: dict[str, Any], inputs: list[Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        props = body.get("properties") or None
        history = body.get("propertiesWithHistory") or None
        archived = bool(body.get("archived", False))
        id_property = body.get("idProperty") or None
        results, missing = [], []
        with self.portal.lock:
            for item in inputs:
                oid = str((item or {}).get("id", ""))
                if id_property is not None and id_property != "hs_object_id":
                    rec = self.portal.find_unique(kind, str(id_property), oid)
                else:
                    rec = (
                        self.portal.get(kind, int(oid), archived=archived)
                        if oid.isdigit()
                        else None
                    )
                if rec is None:
                    missing.append(oid)
                else:
                    results.append(self._render(kind, rec, props, history))
        errors = []
        if missing:
            errors.append(
                _record_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {SINGULAR[kind].upper()} objects, "
                    "they may be deleted or not exist. Check that ids are "
                    "valid.",
                    missing,
                )
            )
        return results, errors

    def _batch_create(
        self, kind: str, inputs: list[Any], name: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Response | None]:
        prepared = []
        for i, item in enumerate(inputs):
            if not isinstance(item, dict):
                return [], [], self.error(400, "VALIDATION_ERROR", f"inputs[{i}]: not an object")
            try:
                links = self._links(kind, item.get("associations") or [])
                self.portal._coerce(kind, item.get("properties") or {}, creating=True)
            except PortalError as e:
                return [], [], self.error(400, e.category, f"inputs[{i}]: {e.message}")
            prepared.append((item, links))
        results, errors = [], []
        with self.portal.lock:
            for item, links in prepared:
                fault = self.faults.take_record(name, None)
                if fault is not None:
                    errors.append(_fault_error(fault, None))
                    continue
                try:
                    rec = self.portal.create(kind, item.get("properties") or {})
                except PortalError as e:
                    errors.append(_record_error(e.category, e.message, [e.object_id or ""]))
                    continue
                for to_type, to_id, type_id in links:
                    self.portal.associate(kind, rec.id, to_type, to_id, type_id)
                results.append(self._render(kind, rec, list(item.get("properties") or [])))
        return results, errors, None

    def _batch_update(
        self, kind: str, inputs: list[Any], name: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Response | None]:
        for i, item in enumerate(inputs):
            if not isinstance(item, dict) or not str(item.get("id", "")).isdigit():
                return (
                    [],
                    [],
                    self.error(
                        400, "VALIDATION_ERROR", f"inputs[{i}].id: must be a numeric object id"
                    ),
                )
            try:
                self.portal._coerce(kind, item.get("properties") or {}, creating=False)
            except PortalError as e:
                return [], [], self.error(400, e.category, f"inputs[{i}]: {e.message}")
        results, errors = [], []
        with self.portal.lock:
            for item in inputs:
                oid = str(item["id"])
                fault = self.faults.take_record(name, oid)
                if fault is not None:
                    errors.append(_fault_error(fault, oid))
                    continue
                try:
                    rec = self.portal.update(kind, int(oid), item.get("properties") or {})
                except PortalError as e:
                    errors.append(_record_error(e.category, e.message, [oid]))
                    continue
                results.append(self._render(kind, rec, list(item.get("properties") or [])))
        return results, errors, None

    def _links(self, kind: str, associations: list[Any]) -> list[tuple[str, int, int]]:
        """Validate inline associations: [{"to": {"id"}, "types": [{associationTypeId}]}]."""
        out = []
        for a in associations:
            to_id = str(((a or {}).get("to") or {}).get("id", ""))
            types = (a or {}).get("types") or []
            if not to_id.isdigit() or not types:
                raise PortalError("VALIDATION_ERROR", "associations: each needs to.id and types")
            type_id = int(types[0].get("associationTypeId", 0))
            to_type = next(
                (t for (f, t), tid in ASSOCIATION_TYPES.items() if f == kind and tid == type_id),
                None,
            )
            if to_type is None:
                raise PortalError(
                    "VALIDATION_ERROR", f"association type id {type_id} is not valid for {kind}"
                )
            if self.portal.get(to_type, int(to_id)) is None:
                raise PortalError(
                    "VALIDATION_ERROR",
                    f"{SINGULAR[to_type]} {to_id} does not exist, so it cannot be associated",
                )
            out.append((to_type, int(to_id), type_id))
        return out

    # ---- pipelines, owners, properties ------------------------------------------------
    def on_pipelines(self, request: Request, otype: str) -> Response:
        if object_type(otype) != "deals":
            return json_response({"results": []})
        return json_response({"results": [_pipeline(p, i) for i, p in enumerate(PIPELINES)]})

    def on_pipeline(self, request: Request, otype: str, pid: str) -> Response:
        for i, p in enumerate(PIPELINES):
            if p.id == pid and object_type(otype) == "deals":
                return json_response(_pipeline(p, i))
        return self.error(404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {pid}")

    def on_owners(self, request: Request) -> Response:
        archived = request.args.get("archived", "false").lower() == "true"
        email = request.args.get("email")
        limit = min(int(request.args.get("limit", 100) or 100), 500)
        after = int(request.args.get("after") or 0)
        with self.portal.lock:
            owners = [
                o
                for o in self.portal.owners.values()
                if o.archived == archived and (email is None or o.email.lower() == email.lower())
            ]
        page = owners[after : after + limit]
        body: dict[str, Any] = {"results": [_owner(o) for o in page]}
        if after + limit < len(owners):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(body)

    def on_owner(self, request: Request, owner_id: str) -> Response:
        owner = self.portal.owners.get(owner_id)
        if owner is None:
            return self.error(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found")
        return json_response(_owner(owner))

    def on_properties(self, request: Request, otype: str) -> Response:
        kind = self._type(otype)
        return json_response({"results": [_property(kind, p) for p in PROPERTIES[kind].values()]})

    def on_property(self, request: Request, otype: str, name: str) -> Response:
        kind = self._type(otype)
        p = PROPERTIES[kind].get(name)
        if p is None:
            return self.error(404, "OBJECT_NOT_FOUND", f"Property {name} does not exist")
        return json_response(_property(kind, p))

    # ---- associations v4 --------------------------------------------------------------
    def on_assoc_list(self, request: Request, otype: str, oid: str, ttype: str) -> Response:
        kind, to = object_type(otype), object_type(ttype)
        if kind is None or to is None or not oid.isdigit():
            return self.error(400, "VALIDATION_ERROR", "Unknown object type or id")
        links = self.portal.associated(kind, int(oid), to)
        return json_response(
            {
                "results": [
                    {"toObjectId": tid, "associationTypes": [_assoc_type(t) for t in types]}
                    for tid, types in links.items()
                ]
            }
        )

    def on_assoc_put(
        self, request: Request, otype: str, oid: str, ttype: str, tid: str
    ) -> Response:
        body = json.loads(request.get_data() or b"[]")
        type_id = int(body[0]["associationTypeId"]) if body else None
        return self._put_association(otype, oid, ttype, tid, type_id)

    def on_assoc_put_default(
        self, request: Request, otype: str, oid: str, ttype: str, tid: str
    ) -> Response:
        return self._put_association(otype, oid, ttype, tid, None)

    def _put_association(
        self, otype: str, oid: str, ttype: str, tid: str, type_id: int | None
    ) -> Response:
        kind, to = object_type(otype), object_type(ttype)
        if kind is None or to is None or not oid.isdigit() or not tid.isdigit():
            return self.error(400, "VALIDATION_ERROR", "Unknown object type or id")
        if self.portal.get(kind, int(oid)) is None or self.portal.get(to, int(tid)) is None:
            return self.error(404, "OBJECT_NOT_FOUND", "One of the objects does not exist")
        self.portal.associate(kind, int(oid), to, int(tid), type_id)
        return json_response(
            {
                "fromObjectTypeId": OBJECT_TYPE_IDS[kind],
                "fromObjectId": int(oid),
                "toObjectTypeId": OBJECT_TYPE_IDS[to],
                "toObjectId": int(tid),
                "labels": [],
            },
            201,
        )

    def on_assoc_batch(self, request: Request, otype: str, ttype: str, op: str) -> Response:
        kind, to = object_type(otype), object_type(ttype)
        if kind is None or to is None:
            return self.error(400, "VALIDATION_ERROR", "Unknown object type")
        body = self._json(request)
        inputs = body.get("inputs") or []
        if len(inputs) > 1000:
            return self.error(400, "VALIDATION_ERROR", "Too many inputs (max 1000)")
        started = hs_datetime(self.clock.now())
        results: list[dict[str, Any]] = []
        if op == "read":
            for item in inputs:
                oid = str((item or {}).get("id", ""))
                if not oid.isdigit():
                    continue
                links = self.portal.associated(kind, int(oid), to)
                if links:
                    results.append(
                        {
                            "from": {"id": oid},
                            "to": [
                                {
                                    "toObjectId": tid,
                                    "associationTypes": [_assoc_type(t) for t in types],
                                }
                                for tid, types in links.items()
                            ],
                        }
                    )
        elif op == "create":
            for item in inputs:
                fid, tid = item["from"]["id"], item["to"]["id"]
                types = item.get("types") or [{}]
                self.portal.associate(
                    kind, int(fid), to, int(tid), types[0].get("associationTypeId")
                )
                results.append(
                    {
                        "fromObjectTypeId": OBJECT_TYPE_IDS[kind],
                        "fromObjectId": int(fid),
                        "toObjectTypeId": OBJECT_TYPE_IDS[to],
                        "toObjectId": int(tid),
                        "labels": [],
                    }
                )
        else:
            return self.error(404, "OBJECT_NOT_FOUND", f"Unknown batch operation: {op}")
        return json_response(
            {
                "status": "COMPLETE",
                "results": results,
                "startedAt": started,
                "completedAt": hs_datetime(self.clock.now()),
            },
            201 if op == "create" else 200,
        )

    def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError as e:
            raise Reply(self.error(400, "VALIDATION_ERROR", f"Invalid JSON: {e}")) from None
        if not isinstance(body, dict):
            raise Reply(self.error(400, "VALIDATION_ERROR", "Request body must be an object"))
        return body


def _multi(request: Request, key: str) -> list[str] | None:
    """A list query parameter, sent repeated (`a=x&a=y`) or comma-separated (`a=x,y`)."""
    values = [v for raw in request.args.getlist(key) for v in raw.split(",") if v]
    return values or None


def _history_entry(value: str | None, when: datetime) -> dict[str, Any]:
    return {
        "value": value if value is not None else "",
        "timestamp": hs_datetime(when),
        "sourceType": "CRM_UI",
        "sourceId": "userId:1",
        "updatedByUserId": 1,
    }


def _record_error(category: str, message: str, ids: list[str]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": {"ids": ids},
        "errors": [],
        "links": {},
    }


def _fault_error(fault: Fault, oid: str | None) -> dict[str, Any]:
    category = RECORD_CODES[fault.code][1]
    message = (
        fault.message
        or {
            "VALIDATION_ERROR": "Property values were not valid (sandbox validation rule)",
            "OBJECT_NOT_FOUND": "Object not found; it may have been deleted",
            "CONFLICT": "The object was being updated by another request; try again",
        }[category]
    )
    return _record_error(category, message, [oid] if oid else [])


def _assoc_type(type_id: int) -> dict[str, Any]:
    return {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}


def _pipeline(p: Any, order: int) -> dict[str, Any]:
    return {
        "id": p.id,
        "label": p.label,
        "displayOrder": order,
        "archived": False,
        "createdAt": PIPELINE_STAMP,
        "updatedAt": PIPELINE_STAMP,
        "stages": [
            {
                "id": s.id,
                "label": s.label,
                "displayOrder": i,
                "archived": False,
                "createdAt": PIPELINE_STAMP,
                "updatedAt": PIPELINE_STAMP,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                "metadata": {
                    "isClosed": "true" if s.is_closed else "false",
                    "probability": str(s.probability),
                },
            }
            for i, s in enumerate(p.stages)
        ],
    }


def _owner(o: HsOwner) -> dict[str, Any]:
    return {
        "id": o.id,
        "email": o.email,
        "type": "PERSON",
        "firstName": o.first_name,
        "lastName": o.last_name,
        "userId": o.user_id,
        "createdAt": hs_datetime(o.created_at),
        "updatedAt": hs_datetime(o.updated_at),
        "archived": o.archived,
        "teams": [],
    }


def _property(kind: str, p: Any) -> dict[str, Any]:
    return {
        "name": p.name,
        "label": p.label or p.name,
        "type": p.type,
        "fieldType": p.field_type,
        "description": "",
        "groupName": p.group,
        "options": [],
        "displayOrder": -1,
        "calculated": p.calculated,
        "externalOptions": False,
        "hasUniqueValue": p.unique,
        "hidden": False,
        "hubspotDefined": not p.custom,
        "formField": not p.read_only,
        "createdAt": PIPELINE_STAMP,
        "updatedAt": PIPELINE_STAMP,
        "modificationMetadata": {
            "archivable": p.custom,
            "readOnlyDefinition": not p.custom,
            "readOnlyValue": p.read_only,
        },
    }
