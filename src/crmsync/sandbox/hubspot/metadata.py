"""The portal's metadata routes: v3 pipelines and their stages, owners, and property definitions."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.clock import hs_datetime
from crmsync.sandbox.hubspot.base import HubSpotBase
from crmsync.sandbox.hubspot.records import HsOwner
from crmsync.sandbox.hubspot.schema import PIPELINES, PROPERTIES, object_type
from crmsync.sandbox.web import json_response

PIPELINE_STAMP = "2024-01-01T00:00:00.000Z"


class MetadataRoutes(HubSpotBase):
    """Pipelines, owners and properties."""

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
        kind = self.object_kind(otype)
        return json_response({"results": [_property(kind, p) for p in PROPERTIES[kind].values()]})

    def on_property(self, request: Request, otype: str, name: str) -> Response:
        kind = self.object_kind(otype)
        p = PROPERTIES[kind].get(name)
        if p is None:
            return self.error(404, "OBJECT_NOT_FOUND", f"Property {name} does not exist")
        return json_response(_property(kind, p))


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
        "teams": [dict(t) for t in o.teams],
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
