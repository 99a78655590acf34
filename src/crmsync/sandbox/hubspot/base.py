"""What the HubSpot route modules share: the portal they serve, HubSpot's error answer, object
type look-up, record rendering and request parsing. `HubSpotApp` (app.py) puts them together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.clock import hs_datetime
from crmsync.sandbox.hubspot.portal import Portal, PortalError
from crmsync.sandbox.hubspot.records import HsRecord
from crmsync.sandbox.hubspot.schema import (
    ASSOCIATION_TYPES,
    DEFAULT_PROPERTIES,
    PROPERTIES,
    SINGULAR,
    object_type,
)
from crmsync.sandbox.web import CrmApp, Reply, correlation_id, json_response, loads_json


class HubSpotBase(CrmApp):
    """The state and helpers every group of HubSpot routes uses."""

    crm = "hubspot"
    portal: Portal

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

    def object_kind(self, raw: str) -> str:
        """The object type named `raw` (a name or an object type id), or a 400 answer."""
        kind = object_type(raw)
        if kind is None:
            error = self.error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {raw}")
            raise Reply(error)
        return kind

    def render_record(
        self,
        kind: str,
        rec: HsRecord,
        props: list[str] | None,
        history: list[str] | None = None,
        associations: list[str] | None = None,
    ) -> dict[str, Any]:
        """An object as the API shows it: chosen properties, their history, its associations."""
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

    def json_body(self, request: Request) -> dict[str, Any]:
        """The request's JSON object, or a VALIDATION_ERROR answer."""
        try:
            body = loads_json(request.get_data() or b"{}")
        except ValueError as e:
            raise Reply(self.error(400, "VALIDATION_ERROR", f"Invalid JSON: {e}")) from None
        if not isinstance(body, dict):
            raise Reply(self.error(400, "VALIDATION_ERROR", "Request body must be an object"))
        return body

    def links(self, kind: str, associations: list[Any]) -> list[tuple[str, int, int]]:
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


def multi(request: Request, key: str) -> list[str] | None:
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
