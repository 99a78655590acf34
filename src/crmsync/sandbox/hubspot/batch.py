"""The v3 batch routes: read (by id or a unique property), create, update and archive up to 100
objects a call, with per-object errors (injected `record_error` faults included) as a 207.

As HubSpot does, by default (`Portal.strict_batches`): a batch update or archive that names one
record twice is refused whole (400 VALIDATION_ERROR, "Duplicate IDs found in batch input"), and a
batch create with a value of a unique property that is already taken (by an existing object or
an earlier input of the same batch) fails whole with 409 CONFLICT naming the first conflict only,
"... already exists. Existing ID: ..." (hubspot-api-python#51; ../shared/CRM_API_FACTS.md).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.clock import hs_datetime
from crmsync.sandbox.faults import RECORD_CODES, Fault
from crmsync.sandbox.hubspot.base import HubSpotBase
from crmsync.sandbox.hubspot.portal import PortalError
from crmsync.sandbox.hubspot.schema import SINGULAR
from crmsync.sandbox.web import json_response

# Batch read, create, update and archive take at most 100 inputs a call, as HubSpot's do
# (../shared/CRM_API_FACTS.md, "Batch"; developers.hubspot.com/docs/api-reference/latest/crm/
# activities/tasks/batch: `POST /crm/v3/objects/{type}/batch/read|create|update|archive`).
BATCH_LIMIT = 100


class BatchRoutes(HubSpotBase):
    """The batch routes of every object type."""

    def on_batch(self, request: Request, otype: str, op: str) -> Response:
        kind = self.object_kind(otype)
        body = self.json_body(request)
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
        if op in ("update", "archive") and self.portal.strict_batches:
            twice = _duplicate_ids(inputs)
            if twice:
                return self.error(
                    400,
                    "VALIDATION_ERROR",
                    f"Duplicate IDs found in batch input: [{', '.join(twice)}]. IDs must be unique",
                    context={"ids": twice},
                )
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
                    results.append(self.render_record(kind, rec, props, history))
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
                links = self.links(kind, item.get("associations") or [])
                self.portal.coerce(kind, item.get("properties") or {}, creating=True)
            except PortalError as e:
                return [], [], self.error(400, e.category, f"inputs[{i}]: {e.message}")
            prepared.append((item, links))
        results, errors = [], []
        with self.portal.lock:
            if self.portal.strict_batches:
                conflict = self.portal.first_conflict(
                    kind, [item.get("properties") or {} for item, _ in prepared]
                )
                if conflict is not None:
                    return [], [], self.error(409, conflict.category, conflict.message)
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
                results.append(self.render_record(kind, rec, list(item.get("properties") or [])))
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
                self.portal.coerce(kind, item.get("properties") or {}, creating=False)
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
                results.append(self.render_record(kind, rec, list(item.get("properties") or [])))
        return results, errors, None


def _duplicate_ids(inputs: list[Any]) -> list[str]:
    """The ids named more than once in a batch's inputs, in first-seen order."""
    seen: set[str] = set()
    twice: list[str] = []
    for item in inputs:
        oid = str((item or {}).get("id", "")) if isinstance(item, dict) else ""
        if oid in seen and oid not in twice:
            twice.append(oid)
        seen.add(oid)
    return twice


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
