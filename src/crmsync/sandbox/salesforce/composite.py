"""sObject Collections (`/composite/sobjects`): up to 200 records a call, created, updated, read or
deleted, with allOrNone and per-record errors (injected `record_error` faults included).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.faults import RECORD_CODES
from crmsync.sandbox.salesforce.base import SalesforceBase, json_body
from crmsync.sandbox.salesforce.schema import sobject
from crmsync.sandbox.salesforce.values import RecordError
from crmsync.sandbox.web import json_response

COLLECTION_LIMIT = 200


class CompositeRoutes(SalesforceBase):
    """The sObject Collections routes."""

    def on_collections_create(self, request: Request, version: str) -> Response:
        return self._collections(request, "collections_create", creating=True)

    def on_collections_update(self, request: Request, version: str) -> Response:
        return self._collections(request, "collections_update", creating=False)

    def _collections(self, request: Request, name: str, creating: bool) -> Response:
        body = json_body(request)
        records = body.get("records")
        if not isinstance(records, list):
            return self.error(400, "JSON_PARSER_ERROR", "records: expected an array")
        if len(records) > COLLECTION_LIMIT:
            return self.error(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than "
                f"{COLLECTION_LIMIT} records into this call",
            )
        all_or_none = bool(body.get("allOrNone", False))
        results: list[dict[str, Any]] = []
        with self.org.lock:
            plan: list[tuple[dict[str, Any], str, RecordError | None]] = []
            for rec in records:
                problem = self._precheck(rec, creating, name)
                type_name = str((rec.get("attributes") or {}).get("type", ""))
                plan.append((rec, type_name, problem))
            if all_or_none and any(p for _, _, p in plan):
                for rec, _, problem in plan:
                    err = problem or RecordError(
                        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "Record rolled back because not all records "
                        "were valid and the request was using AllOrNone "
                        "header",
                    )
                    results.append(
                        {
                            "id": None if creating else rec.get("id"),
                            "success": False,
                            "errors": [err.as_json()],
                        }
                    )
                return json_response(results)
            for rec, type_name, problem in plan:
                rid = None if creating else rec.get("id")
                if problem is None:
                    values = {k: v for k, v in rec.items() if k not in ("attributes", "id", "Id")}
                    try:
                        if creating:
                            rid = self.org.create(type_name, values)
                        else:
                            self.org.update(type_name, str(rid), values)
                    except RecordError as e:
                        problem = e
                if problem is None:
                    results.append({"id": rid, "success": True, "errors": []})
                else:
                    results.append({"id": rid, "success": False, "errors": [problem.as_json()]})
        return json_response(results)

    def _precheck(self, rec: Any, creating: bool, endpoint: str) -> RecordError | None:
        """Errors knowable before writing: shape, type, existence and injected faults."""
        if not isinstance(rec, dict):
            return RecordError("JSON_PARSER_ERROR", "record must be an object")
        attrs = rec.get("attributes") or {}
        obj = sobject(str(attrs.get("type", "")))
        if obj is None:
            return RecordError("INVALID_TYPE", "sObject type is not supported")
        rid = None
        if not creating:
            rid = rec.get("id") or rec.get("Id")
            if not rid:
                return RecordError(
                    "MISSING_ARGUMENT", "Id not specified in an update call", ("Id",)
                )
            rec["id"] = rid
            existing = self.org.get(obj.name, str(rid))
            if existing is None or existing["IsDeleted"]:
                return RecordError("ENTITY_IS_DELETED", "entity is deleted")
        values = {k: v for k, v in rec.items() if k not in ("attributes", "id", "Id")}
        try:
            self.org.check_values(obj.name, values, creating=creating)
        except RecordError as e:
            return e
        fault = self.faults.take_record(endpoint, str(rid) if rid else None)
        if fault is not None:
            code = RECORD_CODES[fault.code][0]
            message = (
                fault.message
                or {
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION": "Validation failed (sandbox rule)",
                    "ENTITY_IS_DELETED": "entity is deleted",
                    "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record or "
                    f"1 records: {rid or ''}".strip(),
                }[code]
            )
            return RecordError(code, message)
        return None

    def on_collections_get(self, request: Request, version: str, obj: str) -> Response:
        o = self.sobject_named(obj)
        ids = [i for i in request.args.get("ids", "").split(",") if i]
        fields = [f for f in request.args.get("fields", "").split(",") if f]
        if not ids or not fields:
            return self.error(400, "MALFORMED_QUERY", "ids and fields are required")
        if len(ids) > 2000:
            return self.error(400, "EXCEEDED_ID_LIMIT", "Too many ids: more than 2000")
        names = []
        for f in fields:
            fd = o.field(f)
            if fd is None:
                return self.error(
                    400, "INVALID_FIELD", f"No such column '{f}' on entity '{o.name}'."
                )
            names.append(fd.name)
        out: list[dict[str, Any] | None] = []
        with self.org.lock:
            for rid in ids:
                rec = self.org.get(o.name, rid)
                out.append(
                    None
                    if rec is None or rec["IsDeleted"]
                    else self.render_record(o.name, rec, version, ["Id", *names])
                )
        return json_response(out)

    def on_collections_delete(self, request: Request, version: str) -> Response:
        ids = [i for i in request.args.get("ids", "").split(",") if i]
        results = []
        with self.org.lock:
            for rid in ids:
                found = self.org.find_by_id(rid)
                try:
                    if found is None:
                        raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
                    self.org.delete(found[0].name, rid)
                    results.append({"id": rid, "success": True, "errors": []})
                except RecordError as e:
                    results.append({"id": rid, "success": False, "errors": [e.as_json()]})
        return json_response(results)
