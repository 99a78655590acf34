"""Reading Opportunities: changed pages under a (SystemModstamp, ids) cursor, soft deletes with
them, hard deletes through getDeleted, and the ids and re-reads a reconcile pass needs.

Incremental pulls use queryAll ordered by (SystemModstamp, Id), so soft deletes arrive with the
changes, and send it together with getDeleted in one /composite call; a record is covered by the
cursor only once it was stamped before the query began.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import structlog

from crmsync.connectors.base import Page
from crmsync.connectors.salesforce_api import (
    MAX_BATCH,
    SalesforceApi,
    parse_stamp,
    sf_stamp,
    soql_datetime,
)
from crmsync.errors import CrmApiError
from crmsync.model.mapping import Mapping
from crmsync.model.normalize import NormalizeError, convert, normalize, set_aside
from crmsync.model.records import Cursor

log = structlog.get_logger("crmsync.salesforce")

GET_DELETED_DAYS = 15
MIN_DELETED_WINDOW = timedelta(minutes=2)  # getDeleted: more than one minute, seconds cut
REREAD_CHUNK = 200  # ids per SOQL IN list: well under URL limits


def soql_fields(mapping: Mapping) -> list[str]:
    """The columns a pull selects: the bookkeeping ones, then every mapped field once."""
    fields = ["Id", "IsDeleted", "SystemModstamp"]
    for name in mapping.crm_fields():
        if name.lower() not in (f.lower() for f in fields):
            fields.append(name)
    return fields


@dataclass
class PullNotes:
    """What a records pull saw that the history pull after it may skip on: whether any record
    came back that the cursor did not already cover (None: no pull ran)."""

    moved: bool | None = None


def pull(
    api: SalesforceApi,
    mapping: Mapping,
    cursor: Cursor | None,
    batch_size: int,
    notes: PullNotes | None = None,
) -> Iterator[Page]:
    """Changes since `cursor` (everything when None), soft deletes included, then hard deletes.

    An incremental pull sends its first queryAll page and its getDeleted window in one
    /composite call: "The entire series of requests counts as a single call toward your API
    limits" (REST API Developer Guide, "Send Multiple Requests Using Composite"; Query, QueryAll
    and all sObject resources are supported), so a pull that finds nothing costs one call.
    """
    notes = notes if notes is not None else PullNotes()
    notes.moved = cursor is None
    since = None
    if cursor is not None:
        since = parse_stamp(cursor.value) - timedelta(seconds=api.settings.overlap_seconds)
    where = f" WHERE SystemModstamp >= {soql_datetime(since)}" if since else ""
    soql = (
        f"SELECT {', '.join(soql_fields(mapping))} FROM {mapping.object}{where} "
        "ORDER BY SystemModstamp, Id"
    )
    headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
    deleted: dict[str, Any] | None = None
    if cursor is None or since is None:
        first = api.call("query", lambda sf: sf.query(soql, include_deleted=True, headers=headers))
    else:
        first, deleted = _changes(api, mapping.object, soql, headers, since)
    seen_at_value = set(cursor.ids_at_value) if cursor and cursor.ids_at_value else set()
    mark = cursor
    for page in _pages(api, mapping, first, headers, cursor, seen_at_value, notes):
        mark = page.cursor or mark
        yield page
    if deleted is not None and mark is not None:
        yield from _hard_deletes(api, deleted, mark)


def _changes(
    api: SalesforceApi, object_name: str, soql: str, headers: dict[str, str], since: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first queryAll page and the getDeleted answer, from one /composite call.

    getDeleted truncates the seconds of its window, wants more than one minute between start
    and end (else INVALID_REPLICATION_DATE) and a start at most 15 days back (SOAP
    getDeleted(), REST "Get Deleted Records"): the window runs from the pull's `since` (widened
    back to two whole minutes when shorter: a delete reported twice is harmless) to the org's
    time by the last answer (the login's, in a sync).
    """
    version = api.api_version

    def request(sf: Any) -> Any:
        end = api.server_time() or datetime.now(UTC)  # after the login the call may make
        start = _deleted_start(api, since, end)
        window = urlencode({"start": sf_stamp(start), "end": sf_stamp(end)})
        subs = [
            {
                "method": "GET",
                "url": f"/services/data/v{version}/queryAll?{urlencode({'q': soql})}",
                "referenceId": "changes",
                "httpHeaders": headers,
            },
            {
                "method": "GET",
                "url": f"/services/data/v{version}/sobjects/{object_name}/deleted/?{window}",
                "referenceId": "deleted",
            },
        ]
        return sf.restful(
            "composite", method="POST", json={"allOrNone": False, "compositeRequest": subs}
        )

    answer = api.call("changes", request)
    by_ref = {str(a.get("referenceId")): a for a in (answer or {}).get("compositeResponse", [])}
    out = []
    for ref in ("changes", "deleted"):
        sub = by_ref.get(ref) or {}
        status = int(sub.get("httpStatusCode") or 0)
        if status != 200:
            raise CrmApiError(
                f"salesforce {api.connection}: {'query' if ref == 'changes' else 'getDeleted'}: "
                f"{_sub_message(sub.get('body'), status)}"
            )
        out.append(sub["body"])
    return out[0], out[1]


def _sub_message(body: Any, status: int) -> str:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        return f"{first.get('errorCode')}: {' '.join(str(first.get('message', '')).split())}"
    return f"HTTP {status}"


def _deleted_start(api: SalesforceApi, since: datetime, end: datetime) -> datetime:
    earliest = end - timedelta(days=GET_DELETED_DAYS) + timedelta(minutes=5)
    if since < earliest:
        log.warning(
            "salesforce.deletes_window_exceeded",
            connection=api.connection,
            hint="last sync is older than 15 days; run `crmsync sync --reconcile`",
        )
        since = earliest
    return min(_to_minute(since), _to_minute(end) - MIN_DELETED_WINDOW)


def _pages(
    api: SalesforceApi,
    mapping: Mapping,
    first: Any,
    headers: dict[str, str],
    cursor: Cursor | None,
    skip: set[str],
    notes: PullNotes,
) -> Iterator[Page]:
    query_start = (api.server_time() or datetime.now(UTC)) - timedelta(seconds=1)
    mark = cursor
    for result in api.follow(first, headers):
        page = Page(fetched=len(result["records"]))
        for rec in result["records"]:
            stamp = rec["SystemModstamp"]
            if cursor is not None and stamp == cursor.value and rec["Id"] in skip:
                continue
            if cursor is None or not isinstance(stamp, str) or stamp >= cursor.value:
                notes.moved = True  # not a re-read of the overlap the cursor covers
            _add_record(api.connection, mapping, page, rec, query_start)
            changed = _stamp(stamp)
            if changed is None:  # set aside by normalize (modified_at): the cursor stays
                continue
            if changed < query_start:  # not changed since the query began
                if mark is not None and mark.value == stamp:
                    mark = Cursor(stamp, (*mark.ids_at_value, rec["Id"]))
                elif mark is None or stamp > mark.value:
                    mark = Cursor(stamp, (rec["Id"],))
        page.cursor = mark
        yield page


def _add_record(
    connection: str, mapping: Mapping, page: Page, rec: dict[str, Any], now: datetime
) -> None:
    """Add the record to the page as a deletion, an opportunity or a set-aside record."""
    if rec.get("IsDeleted"):
        page.deleted_ids.append(str(rec["Id"]))
        return
    values = _flatten(rec)
    try:
        page.opportunities.append(normalize(connection, rec["Id"], values, mapping, now=now))
    except NormalizeError as e:
        page.set_aside.append(set_aside(str(rec["Id"]), e, values))


def _stamp(value: Any) -> datetime | None:
    """A record's SystemModstamp as a datetime; None when it is not a Salesforce stamp."""
    try:
        stamp = convert("datetime", value, "SystemModstamp") if isinstance(value, str) else None
    except NormalizeError:
        return None
    return stamp if isinstance(stamp, datetime) else None


def _hard_deletes(api: SalesforceApi, answer: dict[str, Any], mark: Cursor) -> Iterator[Page]:
    """Records purged from the recycle bin, as getDeleted reported them.

    getDeleted answers in `latestDateCovered` where the next window should start: when it
    covers less than the next pull's window would start from, the page holds the cursor back so
    that the next window starts at latestDateCovered.
    """
    ids = [r["id"] for r in answer.get("deletedRecords", [])]
    page = Page(deleted_ids=ids)
    covered = answer.get("latestDateCovered")
    overlap = timedelta(seconds=api.settings.overlap_seconds)
    if covered:
        latest = parse_stamp(str(covered))
        if latest < _to_minute(parse_stamp(mark.value) - overlap):
            # the next pull's window starts at `cursor - overlap`: make that latestDateCovered
            page.cursor = Cursor(sf_stamp(latest + overlap), ())
    if ids or page.cursor is not None:
        yield page


def _to_minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def list_ids(api: SalesforceApi, object_name: str) -> Iterator[str]:
    """Every live record id, by Id, 2,000 a call."""
    headers = {"Sforce-Query-Options": f"batchSize={MAX_BATCH}"}
    soql = f"SELECT Id FROM {object_name} ORDER BY Id"
    first = api.call("query", lambda sf: sf.query(soql, headers=headers))
    for result in api.follow(first, headers):
        for rec in result["records"]:
            yield str(rec["Id"])


def reread(api: SalesforceApi, mapping: Mapping, ids: Sequence[str]) -> Iterator[Page]:
    """Full records for `ids`, 200 at a time (one query each)."""
    fields = ", ".join(soql_fields(mapping))
    for start in range(0, len(ids), REREAD_CHUNK):
        chunk = ids[start : start + REREAD_CHUNK]
        quoted = ", ".join(f"'{i}'" for i in chunk)
        soql = f"SELECT {fields} FROM {mapping.object} WHERE Id IN ({quoted})"
        result = api.call("query", lambda sf, q=soql: sf.query(q))  # type: ignore[misc]
        page = Page(fetched=len(result["records"]))
        now = api.server_time() or datetime.now(UTC)
        for rec in result["records"]:
            _add_record(api.connection, mapping, page, rec, now)
        yield page


def _flatten(rec: dict[str, Any]) -> dict[str, Any]:
    """`{"Owner": {"Name": x}}` -> `{"Owner.Name": x}`, as mapping files name fields."""
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            for sub, inner in value.items():
                if sub != "attributes":
                    out[f"{key}.{sub}"] = inner
        else:
            out[key] = value
    return out
