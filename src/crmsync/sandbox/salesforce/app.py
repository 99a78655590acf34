"""The Salesforce REST subset the sandbox answers, in Salesforce's wire format.

OAuth token endpoint (JWT bearer, client credentials, refresh token, password); SOQL query and
queryAll with server-side cursors and `nextRecordsUrl` paging; sObject describe, get, create,
update (with If-Unmodified-Since), delete, getDeleted; sObject Collections; limits. Every answer
carries `Sforce-Limit-Info`.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import jwt
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from crmsync.sandbox.calls import CallLog
from crmsync.sandbox.clock import Clock, parse_datetime, sf_datetime
from crmsync.sandbox.faults import RECORD_CODES, Fault, FaultInjector
from crmsync.sandbox.salesforce.org import Org, RecordError
from crmsync.sandbox.salesforce.schema import SOBJECTS, SObject, describe, sobject
from crmsync.sandbox.salesforce.soql import Query, SoqlError, parse
from crmsync.sandbox.web import CrmApp, Reply, json_bytes, json_response

API_VERSIONS = tuple(f"{v}.0" for v in range(50, 63))
ORG_ID = "00D8d000000SaNdBOX"
COLLECTION_LIMIT = 200
CURSOR_IDLE_SECONDS = 15 * 60
_BATCH_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.I)


@dataclass
class Credentials:
    """What a client needs to log in to the sandbox org, printed by `crmsync sandbox`."""

    client_id: str = "crmsync-sandbox-client"
    client_secret: str = "crmsync-sandbox-secret"
    username: str = "admin@crmsync-sandbox.example"
    password: str = "sandbox-password"
    security_token: str = "SANDBOXTOKEN"
    refresh_token: str = "5Aep861SandboxRefreshToken"
    static_access_token: str = ORG_ID + "!StaticSandboxAccessToken"
    jwt_public_key_pem: bytes = b""  # the connected app's certificate key, for JWT bearer


@dataclass
class Cursor:
    """A server-side query cursor: the matching ids and how to render them."""

    query: Query
    ids: list[str]
    version: str
    include_deleted: bool
    batch_size: int
    touched: float = field(default_factory=time.monotonic)
    # the next page, rendered while the client is busy with this one: (offset, size, body)
    ahead: tuple[int, int, Future[bytes]] | None = None


class SalesforceApp(CrmApp):
    crm = "salesforce"

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
        self._sessions: dict[str, str] = {credentials.static_access_token: "static"}
        self._cursors: dict[str, Cursor] = {}
        self._cursor_seq = 0
        self._renderer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sf-render")
        self._lock = threading.Lock()

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
    @staticmethod
    def error(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
        body: dict[str, Any] = {"message": message, "errorCode": code}
        if fields is not None:
            body["fields"] = fields
        return json_response([body], status)

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
            headers = {"Retry-After": _seconds(fault.retry_after)} if fault.retry_after else None
            resp = self.error(
                429,
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

    def expire_sessions(self) -> None:
        """Invalidate every issued access token (the static one included)."""
        with self._lock:
            self._sessions.clear()

    def authenticate(self, request: Request, name: str) -> Response | None:
        if name in ("oauth_token", "versions"):
            return None
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else auth.removeprefix("OAuth ")
        with self._lock:
            ok = token in self._sessions
        if not ok:
            return self.error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return None

    # ---- OAuth ------------------------------------------------------------------------
    def on_oauth_token(self, request: Request) -> Response:
        form = request.form
        grant = form.get("grant_type", "")
        c = self.credentials

        def fail(error: str, description: str, status: int = 400) -> Response:
            return json_response({"error": error, "error_description": description}, status)

        if grant == "password":
            if form.get("client_id") != c.client_id or form.get("client_secret") != c.client_secret:
                return fail("invalid_client_id", "client identifier invalid")
            if form.get("username") != c.username or form.get("password") not in (
                c.password,
                c.password + c.security_token,
            ):
                return fail("invalid_grant", "authentication failure")
        elif grant == "client_credentials":
            if form.get("client_id") != c.client_id or form.get("client_secret") != c.client_secret:
                return fail("invalid_client", "invalid client credentials")
        elif grant == "refresh_token":
            if form.get("client_id") != c.client_id:
                return fail("invalid_client_id", "client identifier invalid")
            if form.get("refresh_token") != c.refresh_token:
                return fail("invalid_grant", "expired access/refresh token")
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = self._check_assertion(form.get("assertion", ""))
            if problem:
                return fail("invalid_grant", problem)
        else:
            return fail("unsupported_grant_type", "grant type not supported")
        token = f"{ORG_ID}!{secrets.token_urlsafe(32)}"
        with self._lock:
            self._sessions[token] = grant
        issued = str(int(self.clock.now().timestamp() * 1000))
        user_id = self.org.api_user_id or "005000000000000AAA"
        return json_response(
            {
                "access_token": token,
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/{ORG_ID}/{user_id}",
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": secrets.token_urlsafe(32),
                "scope": "api",
            }
        )

    def _check_assertion(self, assertion: str) -> str | None:
        c = self.credentials
        try:
            claims = jwt.decode(
                assertion,
                c.jwt_public_key_pem,
                algorithms=["RS256"],
                options={"require": ["iss", "sub", "aud", "exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            return "expired authorization code"
        except jwt.PyJWTError:
            return "invalid assertion"
        audiences = {self.base_url, "https://login.salesforce.com", "https://test.salesforce.com"}
        aud = claims.get("aud")
        if aud not in audiences and not (isinstance(aud, list) and set(aud) & audiences):
            return "audience is invalid"
        if claims.get("iss") != c.client_id:
            return "invalid_client_id"
        if claims.get("sub") != c.username:
            return "user hasn't approved this consumer"
        return None

    # ---- metadata ---------------------------------------------------------------------
    def on_versions(self, request: Request) -> Response:
        return json_response(
            [
                {"label": "Sandbox", "url": f"/services/data/v{v}", "version": v}
                for v in API_VERSIONS
            ]
        )

    def on_resources(self, request: Request, version: str) -> Response:
        base = f"/services/data/v{version}"
        return json_response(
            {k: f"{base}/{k}" for k in ("limits", "sobjects", "query", "queryAll", "composite")}
        )

    def on_limits(self, request: Request, version: str) -> Response:
        q = self.calls.quota
        return json_response(
            {
                "DailyApiRequests": {"Max": q.daily_limit, "Remaining": self.calls.daily_remaining},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            }
        )

    def on_describe_global(self, request: Request, version: str) -> Response:
        return json_response(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [
                    {k: v for k, v in describe(o, version).items() if k != "fields"}
                    for o in SOBJECTS.values()
                ],
            }
        )

    def _sobject(self, name: str) -> SObject:
        obj = sobject(name)
        if obj is None:
            raise Reply(self.error(404, "NOT_FOUND", "The requested resource does not exist"))
        return obj

    def on_sobject_info(self, request: Request, version: str, obj: str) -> Response:
        o = self._sobject(obj)
        body = {k: v for k, v in describe(o, version).items() if k != "fields"}
        return json_response({"objectDescribe": body, "recentItems": []})

    def on_sobject_describe(self, request: Request, version: str, obj: str) -> Response:
        return json_response(describe(self._sobject(obj), version))

    # ---- records ----------------------------------------------------------------------
    def _render(
        self, name: str, rec: dict[str, Any], version: str, fields: list[str] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": name,
                "url": f"/services/data/v{version}/sobjects/{name}/{rec['Id']}",
            }
        }
        if fields is None:
            out.update(rec)
        else:
            for f in fields:
                out[f] = rec.get(f)
        return out

    def on_sobject_get(self, request: Request, version: str, obj: str, rid: str) -> Response:
        o = self._sobject(obj)
        wanted = [f.strip() for f in request.args.get("fields", "").split(",") if f.strip()]
        for f in wanted:
            if o.field(f) is None:
                return self.error(
                    400, "INVALID_FIELD", f"No such column '{f}' on entity '{o.name}'."
                )
        with self.org.lock:
            rec = self.org.get(o.name, rid)
            if rec is None:
                return self.error(404, "NOT_FOUND", "The requested resource does not exist")
            if rec["IsDeleted"]:
                return self.error(404, "ENTITY_IS_DELETED", "entity is deleted")
            names = [o.by_lower[f.lower()].name for f in wanted] if wanted else None
            body = self._render(o.name, dict(rec), version, names)
        return json_response(body)

    def on_sobject_create(self, request: Request, version: str, obj: str) -> Response:
        o = self._sobject(obj)
        body = _json_body(request)
        try:
            rid = self.org.create(o.name, body)
        except RecordError as e:
            return self.error(400, e.status_code, e.message, list(e.fields))
        return json_response({"id": rid, "success": True, "errors": []}, 201)

    def on_sobject_update(self, request: Request, version: str, obj: str, rid: str) -> Response:
        o = self._sobject(obj)
        body = _json_body(request)
        since: datetime | None = None
        header = request.headers.get("If-Unmodified-Since")
        if header:
            try:
                since = parsedate_to_datetime(header)
            except (TypeError, ValueError):
                return self.error(
                    400, "INVALID_HEADER_TYPE", f"If-Unmodified-Since: invalid date {header}"
                )
        try:
            self.org.update(o.name, rid, body, unmodified_since=since)
        except RecordError as e:
            status = (
                412
                if e.status_code == "PRECONDITION_FAILED"
                else (404 if e.status_code == "ENTITY_IS_DELETED" else 400)
            )
            return self.error(status, e.status_code, e.message, list(e.fields))
        return Response(status=204)

    def on_sobject_delete(self, request: Request, version: str, obj: str, rid: str) -> Response:
        o = self._sobject(obj)
        try:
            self.org.delete(o.name, rid)
        except RecordError as e:
            return self.error(404, e.status_code, e.message)
        return Response(status=204)

    def on_sobject_deleted(self, request: Request, version: str, obj: str) -> Response:
        o = self._sobject(obj)
        try:
            start = parse_datetime(request.args["start"])
            end = parse_datetime(request.args["end"])
        except (KeyError, ValueError):
            return self.error(
                400, "MALFORMED_QUERY", "Both start and end must be valid dateTime values"
            )
        now = self.clock.now()
        earliest = now - timedelta(days=15)
        if end < start:
            return self.error(400, "INVALID_REPLICATION_DATE", "end date is before start date")
        if start < earliest:
            return self.error(
                400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 15 days ago"
            )
        lo, hi = sf_datetime(start), sf_datetime(end)
        with self.org.lock:
            rows = [
                {"id": rid, "deletedDate": when}
                for name, rid, when in self.org.deleted_log
                if name == o.name and lo <= when <= hi
            ]
        return json_response(
            {
                "deletedRecords": rows,
                "earliestDateAvailable": sf_datetime(earliest),
                "latestDateCovered": sf_datetime(min(end, now)),
            }
        )

    # ---- SOQL -------------------------------------------------------------------------
    def on_query(self, request: Request, version: str) -> Response:
        return self._start_query(request, version, include_deleted=False)

    def on_queryAll(self, request: Request, version: str) -> Response:
        return self._start_query(request, version, include_deleted=True)

    def _start_query(self, request: Request, version: str, include_deleted: bool) -> Response:
        soql = request.args.get("q")
        if not soql:
            return self.error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query = parse(soql, today=lambda: self.clock.now().date())
        except SoqlError as e:
            return self.error(400, e.error_code, e.message)
        table = self.org.tables[query.sobject.name]
        with self.org.lock:
            matched = query.run(list(table.values()), self.org.resolve, include_deleted)
        if query.count_only:
            return json_response({"totalSize": len(matched), "done": True, "records": []})
        cursor = Cursor(
            query, [r["Id"] for r in matched], version, include_deleted, _batch_size(request, 2000)
        )
        return self._page(cursor, None, 0)

    def on_query_more(self, request: Request, version: str, locator: str) -> Response:
        key, _, offset_text = locator.rpartition("-")
        self._expire_cursors()
        with self._lock:
            cursor = self._cursors.get(key)
        if cursor is None or not offset_text.isdigit():
            return self.error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        cursor.touched = time.monotonic()
        cursor.batch_size = _batch_size(request, cursor.batch_size)
        return self._page(cursor, key, int(offset_text))

    def _page(self, cursor: Cursor, key: str | None, offset: int) -> Response:
        """Answer one page; then render the next one in the background.

        Salesforce serves a cursor's pages from its own side while the client parses the last
        one; rendering ahead gives the sandbox the same overlap, so paging is not bound by the
        sum of server and client work.
        """
        total = len(cursor.ids)
        end = min(offset + cursor.batch_size, total)
        if key is None and end < total:
            key = self._new_cursor(cursor)
        ahead, cursor.ahead = cursor.ahead, None
        if ahead is not None and ahead[:2] == (offset, cursor.batch_size):
            body = ahead[2].result()
        else:
            body = self._render_page(cursor, key, offset)
        if end < total:
            cursor.ahead = (
                end,
                cursor.batch_size,
                self._renderer.submit(self._render_page, cursor, key, end),
            )
        elif key is not None:
            with self._lock:
                self._cursors.pop(key, None)
        return Response(body, content_type="application/json")

    def _render_page(self, cursor: Cursor, key: str | None, offset: int) -> bytes:
        table = self.org.tables[cursor.query.sobject.name]
        page_ids = cursor.ids[offset : offset + cursor.batch_size]
        with self.org.lock:
            records = [
                cursor.query.project(rec, self.org.resolve, cursor.version)
                for rec in (table.get(i) for i in page_ids)
                if rec is not None
            ]
        end = offset + len(page_ids)
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": end >= len(cursor.ids)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/query/{key}-{end}"
        body["records"] = records
        return json_bytes(body)

    def _new_cursor(self, cursor: Cursor) -> str:
        with self._lock:
            self._cursor_seq += 1
            key = f"01g8d{self._cursor_seq:010d}AAA"
            self._cursors[key] = cursor
        return key

    def _expire_cursors(self) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [
                k for k, c in self._cursors.items() if now - c.touched > CURSOR_IDLE_SECONDS
            ]:
                del self._cursors[key]

    # ---- sObject Collections ----------------------------------------------------------
    def on_collections_create(self, request: Request, version: str) -> Response:
        return self._collections(request, "collections_create", creating=True)

    def on_collections_update(self, request: Request, version: str) -> Response:
        return self._collections(request, "collections_update", creating=False)

    def _collections(self, request: Request, name: str, creating: bool) -> Response:
        body = _json_body(request)
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
        o = self._sobject(obj)
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
                    else self._render(o.name, rec, version, ["Id", *names])
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


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError as e:
        error = SalesforceApp.error(400, "JSON_PARSER_ERROR", f"Unexpected character: {e}")
        raise Reply(error) from None
    if not isinstance(body, dict):
        raise Reply(
            SalesforceApp.error(
                400, "JSON_PARSER_ERROR", "Cannot deserialize instance of object from array"
            )
        )
    return body


def _batch_size(request: Request, default: int) -> int:
    """`Sforce-Query-Options: batchSize=N`, clamped to Salesforce's 200..2000."""
    header = request.headers.get("Sforce-Query-Options", "")
    m = _BATCH_RE.search(header)
    if not m:
        return default
    return max(200, min(2000, int(m.group(1))))


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
