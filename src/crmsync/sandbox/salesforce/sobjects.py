"""The sObject REST resources: versions, limits, describe, and one record at a time (get, create,
update with If-Unmodified-Since, delete) plus getDeleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.clock import parse_datetime, sf_datetime
from crmsync.sandbox.salesforce.base import SalesforceBase, json_body
from crmsync.sandbox.salesforce.schema import SOBJECTS, describe
from crmsync.sandbox.salesforce.values import RecordError
from crmsync.sandbox.web import json_response

API_VERSIONS = tuple(f"{v}.0" for v in range(50, 63))


class SObjectRoutes(SalesforceBase):
    """Metadata and single-record routes."""

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

    def on_sobject_info(self, request: Request, version: str, obj: str) -> Response:
        o = self.sobject_named(obj)
        body = {k: v for k, v in describe(o, version).items() if k != "fields"}
        return json_response({"objectDescribe": body, "recentItems": []})

    def on_sobject_describe(self, request: Request, version: str, obj: str) -> Response:
        return json_response(describe(self.sobject_named(obj), version))

    def on_sobject_get(self, request: Request, version: str, obj: str, rid: str) -> Response:
        o = self.sobject_named(obj)
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
            body = self.render_record(o.name, dict(rec), version, names)
        return json_response(body)

    def on_sobject_create(self, request: Request, version: str, obj: str) -> Response:
        o = self.sobject_named(obj)
        body = json_body(request)
        try:
            rid = self.org.create(o.name, body)
        except RecordError as e:
            return self.error(400, e.status_code, e.message, list(e.fields))
        return json_response({"id": rid, "success": True, "errors": []}, 201)

    def on_sobject_update(self, request: Request, version: str, obj: str, rid: str) -> Response:
        o = self.sobject_named(obj)
        body = json_body(request)
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
        o = self.sobject_named(obj)
        try:
            self.org.delete(o.name, rid)
        except RecordError as e:
            return self.error(404, e.status_code, e.message)
        return Response(status=204)

    def on_sobject_deleted(self, request: Request, version: str, obj: str) -> Response:
        o = self.sobject_named(obj)
        try:
            start = parse_datetime(request.args["start"])
            end = parse_datetime(request.args["end"])
        except (KeyError, ValueError):
            return self.error(
                400, "MALFORMED_QUERY", "Both start and end must be valid dateTime values"
            )
        # getDeleted's rules (SOAP API getDeleted(), REST "Get Deleted Records"): the seconds
        # of start and end are truncated; start must precede end by more than one minute
        # (else INVALID_REPLICATION_DATE); start may be at most 15 days back; the answer's
        # latestDateCovered (<= end) is where the next window should start.
        start, end = _to_minute(start), _to_minute(end)
        now = self.clock.now()
        earliest = now - timedelta(days=15)
        if end - start <= timedelta(minutes=1):
            return self.error(
                400,
                "INVALID_REPLICATION_DATE",
                "startDate must chronologically precede endDate by more than one minute",
            )
        if start < earliest:
            return self.error(
                400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 15 days ago"
            )
        lo, hi = sf_datetime(start), sf_datetime(min(end, now))
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
                # a whole minute at or before the end: a window starting here misses nothing
                "latestDateCovered": sf_datetime(_to_minute(min(end, now))),
            }
        )


def _to_minute(value: datetime) -> datetime:
    """getDeleted truncates the seconds of its start and end."""
    return value.replace(second=0, microsecond=0)
