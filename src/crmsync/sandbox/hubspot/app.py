"""The HubSpot CRM subset the sandbox answers, in HubSpot's wire format.

v3 objects (deals, tasks, companies; by name or object type id): list with `archived`, get, create,
update, archive, search, batch read/create/update/archive; v3 pipelines, owners and properties;
`propertiesWithHistory`; v4 associations. Every answer carries the rate-limit headers. The routes
live in objects.py, batch.py, metadata.py and associations.py; this module puts them together and
words authentication, faults and limits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from crmsync.sandbox.calls import CallLog
from crmsync.sandbox.clock import Clock
from crmsync.sandbox.faults import Fault, FaultInjector
from crmsync.sandbox.hubspot.associations import AssociationRoutes
from crmsync.sandbox.hubspot.batch import BatchRoutes
from crmsync.sandbox.hubspot.metadata import MetadataRoutes
from crmsync.sandbox.hubspot.objects import ObjectRoutes
from crmsync.sandbox.hubspot.portal import Portal
from crmsync.sandbox.hubspot.schema import object_type
from crmsync.sandbox.web import correlation_id, json_response


class HubSpotApp(ObjectRoutes, BatchRoutes, MetadataRoutes, AssociationRoutes):
    """The sandbox portal's CRM API as one WSGI app."""

    def __init__(
        self, portal: Portal, clock: Clock, calls: CallLog, faults: FaultInjector, access_token: str
    ) -> None:
        super().__init__(clock, calls, faults)
        self.portal = portal
        self.access_token = access_token
        self.id_order = {}

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
