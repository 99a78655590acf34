"""Admin HTTP endpoints under `/__sandbox/` on each sandbox CRM, for tests in other processes.

They never count as API calls and need no authentication (the sandbox only listens on localhost).
  GET    /__sandbox/calls                 counts per endpoint, quota used and left
  DELETE /__sandbox/calls                 reset the counts
  GET    /__sandbox/faults                active fault rules
  POST   /__sandbox/faults                add one: {"kind": "rate_limit", "endpoint": "query*", ...}
  DELETE /__sandbox/faults                clear them
  POST   /__sandbox/records/<type>        create a record: {"fields": {...}}
  PATCH  /__sandbox/records/<type>/<id>   edit one: {"fields": {...}} (may set modification stamps)
  DELETE /__sandbox/records/<type>/<id>   soft delete (?hard=true to purge)
  POST   /__sandbox/touch                 {"type", "ids", "at"}: give many records one timestamp
  POST   /__sandbox/clock                 {"advance_seconds": n}
  POST   /__sandbox/sessions/expire       invalidate every Salesforce access token
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.errors import InvalidInput
from crmsync.sandbox.faults import Fault
from crmsync.sandbox.hubspot.portal import PortalError
from crmsync.sandbox.salesforce.values import RecordError
from crmsync.sandbox.sides import CrmSide
from crmsync.sandbox.web import json_response


def admin_app(side: CrmSide) -> Callable[[Request], Response]:
    """The admin request handler for one sandbox CRM."""

    def handle(request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p][1:]
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            return json_response({"error": "body is not JSON"}, 400)
        try:
            return _route(side, request.method, parts, body, request)
        except (InvalidInput, RecordError, PortalError, KeyError, ValueError, TypeError) as e:
            return json_response({"error": type(e).__name__, "message": str(e)}, 400)

    return handle


def _route(side: CrmSide, method: str, parts: list[str], body: Any, request: Request) -> Response:
    head = parts[0] if parts else ""
    if head == "calls":
        if method == "DELETE":
            side.calls.reset()
        return json_response(side.call_summary())
    if head == "faults":
        if method == "POST":
            fault = side.faults.add(Fault(**body))
            return json_response(fault.as_json(), 201)
        if method == "DELETE":
            side.faults.clear()
        return json_response([f.as_json() for f in side.faults.active()])
    if head == "records" and len(parts) >= 2:
        kind = parts[1]
        if method == "POST":
            return json_response({"id": side.admin_create(kind, body.get("fields", {}))}, 201)
        if method == "PATCH" and len(parts) == 3:
            side.admin_update(kind, parts[2], body.get("fields", {}))
            return json_response({"ok": True})
        if method == "DELETE" and len(parts) == 3:
            side.admin_delete(kind, parts[2], hard=request.args.get("hard") == "true")
            return json_response({"ok": True})
    if head == "touch" and method == "POST":
        side.touch(body["type"], list(body["ids"]), body["at"])
        return json_response({"ok": True})
    if head == "clock" and method == "POST":
        side.clock.advance(timedelta(seconds=float(body.get("advance_seconds", 0))))
        return json_response({"now": side.clock.now().isoformat()})
    if head == "sessions" and method == "POST":
        side.expire_sessions()
        return json_response({"ok": True})
    return json_response({"error": "no such admin endpoint"}, 404)
