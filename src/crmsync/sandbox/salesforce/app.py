"""The Salesforce REST subset the sandbox answers, in Salesforce's wire format.

OAuth token endpoint (JWT bearer, client credentials, refresh token, password); SOQL query and
queryAll with server-side cursors and `nextRecordsUrl` paging; sObject describe, get, create,
update (with If-Unmodified-Since), delete, getDeleted; sObject Collections; the Composite
resource (row updates); limits. Every answer carries `Sforce-Limit-Info`. The routes live in
auth.py, sobjects.py, query.py, composite.py and composite_requests.py; this module puts them
together and words the faults and limits.
"""

from __future__ import annotations

from collections.abc import Iterable

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from crmsync.sandbox.calls import CallLog
from crmsync.sandbox.clock import Clock
from crmsync.sandbox.faults import Fault, FaultInjector
from crmsync.sandbox.salesforce.auth import AuthRoutes, Credentials, Sessions
from crmsync.sandbox.salesforce.composite import CompositeRoutes
from crmsync.sandbox.salesforce.composite_requests import CompositeRequestRoutes
from crmsync.sandbox.salesforce.org import Org
from crmsync.sandbox.salesforce.query import Cursors, QueryRoutes
from crmsync.sandbox.salesforce.sobjects import SObjectRoutes

__all__ = ["Credentials", "SalesforceApp"]


class SalesforceApp(
    AuthRoutes, SObjectRoutes, QueryRoutes, CompositeRoutes, CompositeRequestRoutes
):
    """The sandbox org's REST API as one WSGI app."""

    def __init__(
        self,
        org: Org,
        clock: Clock,
        calls: CallLog,
        faults: FaultInjector,
        credentials: Credentials,
    ) -> None:
        super().__init__(clock, calls, faults)
        self.org = org
        self.credentials = credentials
        self.base_url = ""  # set once the server knows its port
        self.login_url = ""  # the login server's URL (another org's server in a multi-org sandbox)
        self.sessions = Sessions(credentials.static_access_token)
        self.cursors = Cursors()

    # ---- routing ----------------------------------------------------------------------
    def routes(self) -> Iterable[Rule]:
        d = "/services/data/v<version>"
        return [
            Rule("/services/oauth2/token", endpoint="oauth_token", methods=["POST"]),
            Rule("/services/data", endpoint="versions", methods=["GET"]),
            Rule(d, endpoint="resources", methods=["GET"]),
            Rule(d + "/limits", endpoint="limits", methods=["GET"]),
            Rule(d + "/sobjects", endpoint="describe_global", methods=["GET"]),
            Rule(d + "/sobjects/<obj>", endpoint="sobject_info", methods=["GET"]),
            Rule(d + "/sobjects/<obj>", endpoint="sobject_create", methods=["POST"]),
            Rule(d + "/sobjects/<obj>/describe", endpoint="sobject_describe", methods=["GET"]),
            Rule(d + "/sobjects/<obj>/deleted", endpoint="sobject_deleted", methods=["GET"]),
            Rule(d + "/sobjects/<obj>/<rid>", endpoint="sobject_get", methods=["GET"]),
            Rule(d + "/sobjects/<obj>/<rid>", endpoint="sobject_update", methods=["PATCH"]),
            Rule(d + "/sobjects/<obj>/<rid>", endpoint="sobject_delete", methods=["DELETE"]),
            Rule(d + "/query", endpoint="query", methods=["GET"]),
            Rule(d + "/queryAll", endpoint="queryAll", methods=["GET"]),
            Rule(d + "/query/<locator>", endpoint="query_more", methods=["GET"]),
            Rule(d + "/queryAll/<locator>", endpoint="query_more", methods=["GET"]),
            Rule(d + "/composite", endpoint="composite", methods=["POST"]),
            Rule(d + "/composite/sobjects", endpoint="collections_create", methods=["POST"]),
            Rule(d + "/composite/sobjects", endpoint="collections_update", methods=["PATCH"]),
            Rule(d + "/composite/sobjects", endpoint="collections_delete", methods=["DELETE"]),
            Rule(d + "/composite/sobjects/<obj>", endpoint="collections_get", methods=["GET"]),
        ]

    def is_billable(self, name: str) -> bool:
        return name != "oauth_token"

    def over_limits(self, name: str, billable: bool, search: bool) -> str | None:
        if billable and self.calls.over_daily():
            return "DAILY"
        return None

    # ---- wire details -----------------------------------------------------------------
    def decorate(self, response: Response, name: str) -> None:
        if name != "oauth_token":
            response.headers["Sforce-Limit-Info"] = (
                f"api-usage={self.calls.daily_used}/{self.calls.quota.daily_limit}"
            )

    def not_found(self, request: Request) -> Response:
        self.calls.record("not_found")
        return self.error(404, "NOT_FOUND", "The requested resource does not exist")

    def rate_limited(self, policy: str) -> Response:
        return self.error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def fault_response(self, fault: Fault, name: str) -> Response:
        if fault.kind == "rate_limit":
            # Salesforce sends its concurrency limits as 403 REQUEST_LIMIT_EXCEEDED, the code of
            # the daily limit, with a message naming the limit ("ConcurrentPerOrgLongTxn Limit
            # exceeded", "ConcurrentRequests"); clients tell them apart by the message (Salesforce
            # "API Request Limits and Allocations"; ../shared/CRM_API_FACTS.md). It sends no
            # Retry-After; the header is added only when a test asks for one.
            headers = {"Retry-After": _seconds(fault.retry_after)} if fault.retry_after else None
            resp = self.error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                fault.message or "ConcurrentPerOrgLongTxn Limit exceeded.",
            )
            if headers:
                resp.headers.update(headers)
            return resp
        if fault.kind == "unavailable":
            return self.error(503, "SERVER_UNAVAILABLE", fault.message or "Service Unavailable")
        if fault.kind == "server_error":
            return self.error(
                500,
                "UNKNOWN_EXCEPTION",
                fault.message
                or "An unexpected error occurred. Please include this "
                "ErrorId if you contact support: 1234567890-12345 (-1234567890)",
            )
        if fault.kind == "expired_session":
            self.expire_sessions()
            return self.error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if fault.kind == "daily_limit":
            return self.error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        raise AssertionError(fault.kind)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
