"""The v4 association routes: list an object's associations, associate two objects (with a type or
the default one), and batch read or create."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.clock import hs_datetime
from crmsync.sandbox.hubspot.base import HubSpotBase
from crmsync.sandbox.hubspot.schema import OBJECT_TYPE_IDS, object_type
from crmsync.sandbox.web import json_response


class AssociationRoutes(HubSpotBase):
    """The v4 associations routes."""

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
        body = self.json_body(request)
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


def _assoc_type(type_id: int) -> dict[str, Any]:
    return {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}
