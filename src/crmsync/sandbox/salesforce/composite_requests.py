"""The Composite resource (`/composite`): up to 25 subrequests in one call, each with its own
status, body and headers; the sandbox carries sObject row updates (PATCH), the subrequest crmsync
sends with `If-Unmodified-Since` so a record edited since it was read answers 412, and the reads
an incremental pull sends together: Query and QueryAll (GET, `httpHeaders` such as
Sforce-Query-Options honoured) and sObject Get Deleted.

Salesforce REST API Developer Guide, "Composite" and "Composite Subrequest": at most 25
subrequests, at most 5 of them query operations (Query, QueryAll, their next pages); "Composite
is supported for ... all sObject resources ... the Query resource ... the QueryAll resource"; "The
entire series of requests counts as a single call toward your API limits"; with allOrNone false a
failed subrequest does not roll back the others; each answer is `{body, httpHeaders,
httpStatusCode, referenceId}` in request order. Conditional headers: "Conditional Request
Headers" (an invalid date is 400, a newer record is 412).
"""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from crmsync.sandbox.faults import RECORD_CODES
from crmsync.sandbox.salesforce.base import SalesforceBase, json_body
from crmsync.sandbox.salesforce.values import RecordError
from crmsync.sandbox.web import json_response

SUBREQUEST_LIMIT = 25
QUERY_LIMIT = 5  # query operations per composite call
ROW_URL = re.compile(r"^/services/data/v\d+\.\d+/sobjects/(?P<obj>\w+)/(?P<rid>\w+)$")
# the reads a composite call may carry here -> the route that answers them
READ_URLS = (
    (re.compile(r"^/services/data/v(?P<version>\d+\.\d+)/query/?$"), "query"),
    (re.compile(r"^/services/data/v(?P<version>\d+\.\d+)/queryAll/?$"), "queryAll"),
    (
        re.compile(r"^/services/data/v(?P<version>\d+\.\d+)/sobjects/(?P<obj>\w+)/deleted/?$"),
        "sobject_deleted",
    ),
)
STATUS = {"PRECONDITION_FAILED": 412, "ENTITY_IS_DELETED": 404, "NOT_FOUND": 404}


class CompositeRequestRoutes(SalesforceBase):
    """The `/composite` route."""

    def on_composite(self, request: Request, version: str) -> Response:
        body = json_body(request)
        subs = body.get("compositeRequest")
        if not isinstance(subs, list) or not subs:
            return self.error(400, "JSON_PARSER_ERROR", "compositeRequest: expected an array")
        if len(subs) > SUBREQUEST_LIMIT:
            return self.error(
                400,
                "LIMIT_EXCEEDED",
                f"Limit Exceeded: the request has more than {SUBREQUEST_LIMIT} subrequests",
            )
        if body.get("allOrNone"):
            return self.error(400, "INVALID_INPUT", "the sandbox answers allOrNone false only")
        queries = sum(
            1
            for sub in subs
            if isinstance(sub, dict) and "/query" in urlsplit(str(sub.get("url") or "")).path
        )
        if queries > QUERY_LIMIT:
            return self.error(
                400,
                "LIMIT_EXCEEDED",
                f"Limit Exceeded: the request has more than {QUERY_LIMIT} query operations",
            )
        answers = [self._subrequest(sub) for sub in subs]
        return json_response({"compositeResponse": answers})

    def _subrequest(self, sub: Any) -> dict[str, Any]:
        if not isinstance(sub, dict):
            return _answer("", 400, "JSON_PARSER_ERROR", "subrequest must be an object")
        ref = str(sub.get("referenceId") or "")
        if sub.get("method") == "GET":
            return self._read(sub, ref)
        match = ROW_URL.match(str(sub.get("url") or ""))
        if sub.get("method") != "PATCH" or match is None:
            return _answer(
                ref,
                400,
                "INVALID_INPUT",
                "the sandbox's /composite carries sObject row PATCHes, queries and getDeleted",
            )
        since = None
        header = (sub.get("httpHeaders") or {}).get("If-Unmodified-Since")
        if header:
            try:
                since = parsedate_to_datetime(str(header))
            except (TypeError, ValueError):
                return _answer(
                    ref, 400, "INVALID_HEADER_TYPE", f"If-Unmodified-Since: invalid date {header}"
                )
        values = sub.get("body")
        if not isinstance(values, dict):
            return _answer(ref, 400, "JSON_PARSER_ERROR", "body must be an object")
        rid = match["rid"]
        fault = self.faults.take_record("composite", rid)
        try:
            if fault is not None:
                code = RECORD_CODES[fault.code][0]
                raise RecordError(code, fault.message or f"{code} (sandbox fault)")
            self.org.update(match["obj"], rid, values, unmodified_since=since)
        except RecordError as e:
            return _answer(ref, STATUS.get(e.status_code, 400), e.status_code, e.message)
        return {"body": None, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": ref}

    def _read(self, sub: dict[str, Any], ref: str) -> dict[str, Any]:
        """A GET subrequest, answered by the route that answers it as a call of its own."""
        url = urlsplit(str(sub.get("url") or ""))
        for pattern, route in READ_URLS:
            match = pattern.match(url.path)
            if match is None:
                continue
            headers = {str(k): str(v) for k, v in (sub.get("httpHeaders") or {}).items()}
            environ = EnvironBuilder(
                path=url.path, query_string=url.query, method="GET", headers=list(headers.items())
            ).get_environ()
            handler = getattr(self, f"on_{route}")
            args = match.groupdict()
            response: Response = handler(Request(environ), **args)
            data = response.get_data()
            return {
                "body": json.loads(data) if data else None,
                "httpHeaders": {},
                "httpStatusCode": response.status_code,
                "referenceId": ref,
            }
        return _answer(ref, 404, "NOT_FOUND", f"The requested resource does not exist: {url.path}")


def _answer(ref: str, status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": code, "message": message}],
        "httpHeaders": {},
        "httpStatusCode": status,
        "referenceId": ref,
    }
