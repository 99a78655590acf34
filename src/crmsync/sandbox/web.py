"""What both sandbox CRM apps share: routing, call counting, fault injection, JSON answers.

Each CRM app subclasses `CrmApp`, declares its routes with an endpoint name per route, and says how
its CRM words errors. The order for every API request is: count it, apply a fault if one fires,
check authentication, then answer.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.http import http_date
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from crmsync.sandbox.calls import CallLog
from crmsync.sandbox.clock import Clock
from crmsync.sandbox.faults import Fault, FaultInjector
from crmsync.sandbox.server import CONNECTION_KEY

Handler = Callable[..., Response]
WsgiStart = Callable[..., Any]


def json_bytes(body: Any) -> bytes:
    """Compact JSON; ASCII-escaped, which both CRMs accept and CPython encodes fastest."""
    # JSON has no Infinity or NaN: refuse to serve them rather than send what no CRM sends
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("ascii")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def loads_json(data: bytes) -> Any:
    """Parse a request body as strict JSON: `NaN`, `Infinity` and `-Infinity` are refused."""
    return json.loads(data, parse_constant=_no_constant)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON answer."""
    return Response(
        json_bytes(body), status=status, headers=headers, content_type="application/json"
    )


def correlation_id() -> str:
    return str(uuid.uuid4())


class Drop(Exception):
    """Raised by a handler to close the connection without answering."""


class Reply(Exception):
    """Raised by a handler to answer at once with a ready response (usually an error)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class CrmApp:
    """Base WSGI app for one sandbox CRM."""

    crm = "crm"

    def __init__(self, clock: Clock, calls: CallLog, faults: FaultInjector) -> None:
        self.clock = clock
        self.calls = calls
        self.faults = faults
        self.url_map = Map(self.routes(), strict_slashes=False, merge_slashes=False)
        self.admin: Callable[[Request], Response] | None = None

    # ---- to be provided by each CRM ---------------------------------------------------
    def routes(self) -> Iterable[Rule]:
        raise NotImplementedError

    def endpoint_name(self, endpoint: str, args: dict[str, Any], request: Request) -> str:
        """The name calls are counted and faults matched under (e.g. `query`, `deals.search`)."""
        return endpoint

    def is_billable(self, name: str) -> bool:
        return True

    def is_search(self, name: str) -> bool:
        return False

    def authenticate(self, request: Request, name: str) -> Response | None:
        """None if the request may proceed, else the CRM's 401 answer."""
        return None

    def fault_response(self, fault: Fault, name: str) -> Response:
        raise NotImplementedError

    def rate_limited(self, policy: str) -> Response:
        raise NotImplementedError

    def not_found(self, request: Request) -> Response:
        raise NotImplementedError

    def decorate(self, response: Response, name: str) -> None:
        """Add the CRM's quota headers to every API answer."""

    # ---- the request cycle ------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: WsgiStart) -> Iterable[bytes]:
        request = Request(environ)
        request.get_data(cache=True)  # read the whole body now: the connection is kept alive
        path = request.path
        if path.startswith("/__sandbox") and self.admin is not None:
            return self.admin(request)(environ, start_response)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match(path.rstrip("/") or "/", method=request.method)
        except NotFound:
            return self.not_found(request)(environ, start_response)
        except MethodNotAllowed as exc:
            return exc.get_response(environ)(environ, start_response)
        name = self.endpoint_name(str(endpoint), dict(args), request)
        response = self._handle(request, str(endpoint), name, dict(args))
        if response is None:  # dropped connection: hang up; the status line goes nowhere
            _drop(environ)
            start_response("500 Connection dropped", [("Content-Length", "0")])
            return []
        self.decorate(response, name)
        # the CRM's own clock: clients use it to bound what a query saw
        response.headers["Date"] = http_date(self.clock.now())
        return response(environ, start_response)

    def _handle(
        self, request: Request, endpoint: str, name: str, args: dict[str, Any]
    ) -> Response | None:
        billable = self.is_billable(name)
        search = self.is_search(name)
        policy = self.over_limits(name, billable, search)
        self.calls.record(name, billable=billable, search=search)
        if policy is not None:
            return self.rate_limited(policy)
        fault = self.faults.take(name)
        if fault is not None:
            if fault.kind == "drop":
                return None
            if fault.kind == "slow":
                time.sleep(fault.delay)
            else:
                return self.fault_response(fault, name)
        denied = self.authenticate(request, name)
        if denied is not None:
            return denied
        handler: Handler = getattr(self, "on_" + endpoint.replace(".", "_"))
        try:
            return handler(request, **args)
        except Drop:
            return None
        except Reply as reply:
            return reply.response

    def over_limits(self, name: str, billable: bool, search: bool) -> str | None:
        """The quota policy this call breaks, if limits are being enforced."""
        if not billable:
            return None
        return self.calls.over_window(search)


def _drop(environ: dict[str, Any]) -> None:
    """Shut the client connection so it sees the server hang up mid-request."""
    conn = environ.get(CONNECTION_KEY)
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.socket.shutdown(socket.SHUT_RDWR)
