"""Salesforce writes: flags on opportunities and follow-up Tasks, through sObject Collections.

One call carries up to 200 records (allOrNone false), and the answer has a result per record in
request order, so one bad record never blocks its batch. Tasks carry crmsync's idempotency key in
a unique external-id field: a lost answer is recovered by looking the key up, never by guessing.

Flag writes of up to 25 records go through the Composite resource instead, each a conditional
update (`If-Unmodified-Since`: the stamp the sync read), so a rep's edit in the moment between
the executor's check and the write still wins. Salesforce offers the condition on single-record
updates only (sObject Rows, or a /composite subrequest; not on sObject Collections), so bigger
batches (a first cycle) keep one call per 200 records and rely on the check just before.
A task's Subject and Description are plain text without control characters, cut to the fields'
lengths (255 and 32,000: `crmsync.model.text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from crmsync.connectors.base import Write, WriteResult, custom_field, task_fields
from crmsync.connectors.salesforce_api import SalesforceApi, parse_stamp, soql_datetime
from crmsync.model.mapping import Mapping
from crmsync.model.records import Cursor
from crmsync.model.text import BODY_LIMIT, SUBJECT_LIMIT, plain_text

COLLECTION_LIMIT = 200
COMPOSITE_LIMIT = 25  # subrequests per /composite call (REST API Developer Guide, "Composite")
KEYS_PER_QUERY = 200
PRIORITY = {"low": "Low", "normal": "Normal", "high": "High"}
# Per-record codes worth sending again later; anything else is parked with the CRM's message.
RETRYABLE = {"UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "SERVER_UNAVAILABLE"}
DUPLICATE = "DUPLICATE_VALUE:"  # a unique field's value is taken: for a task, its key


def write(
    api: SalesforceApi, mapping: Mapping, kind: str, writes: Sequence[Write]
) -> list[WriteResult]:
    """One sObject Collections call for up to 200 writes of one kind."""
    if len(writes) > COLLECTION_LIMIT:
        raise ValueError(f"at most {COLLECTION_LIMIT} records per collections call")
    conditional = all(w.values.get("based_on") for w in writes)
    if kind == "flag.write" and len(writes) <= COMPOSITE_LIMIT and conditional:
        return _conditional_flags(api, mapping, writes)
    records = [_record(mapping, kind, w) for w in writes]
    method = "POST" if kind == "task.create" else "PATCH"
    body = {"allOrNone": False, "records": records}
    answer = api.call(
        f"write {kind}",
        lambda sf: sf.restful("composite/sobjects", method=method, json=body),
    )
    results: list[WriteResult] = []
    for w, result in zip(writes, answer or [], strict=False):
        if result.get("success"):
            results.append(WriteResult(w.key, True, crm_id=result.get("id") or w.task_id))
            continue
        errors = result.get("errors") or [{}]
        code = str(errors[0].get("statusCode") or "UNKNOWN")
        message = "; ".join(str(e.get("message", "")) for e in errors)
        results.append(
            WriteResult(w.key, False, error=f"{code}: {message}", retryable=code in RETRYABLE)
        )
    for w in writes[len(results) :]:  # the CRM answered fewer results than records sent
        results.append(WriteResult(w.key, False, error="no result for this record", retryable=True))
    if kind == "task.create":
        results = _found_duplicates(api, mapping, results)
    return results


def _conditional_flags(
    api: SalesforceApi, mapping: Mapping, writes: Sequence[Write]
) -> list[WriteResult]:
    """Up to 25 flag writes in one /composite call, each applied only if the record is unmodified
    since the stamp the plan was based on (412 PRECONDITION_FAILED otherwise)."""
    subs = [
        {
            "method": "PATCH",
            "url": f"/services/data/v{api.api_version}/sobjects/{mapping.object}/{w.native_id}",
            "referenceId": f"r{i}",
            "body": {custom_field(mapping, str(w.values["field"])): w.values.get("value")},
            "httpHeaders": {"If-Unmodified-Since": _http_date(str(w.values["based_on"]))},
        }
        for i, w in enumerate(writes)
    ]
    body = {"allOrNone": False, "compositeRequest": subs}
    answer = api.call(
        "write flag.write", lambda sf: sf.restful("composite", method="POST", json=body)
    )
    by_ref = {str(a.get("referenceId")): a for a in (answer or {}).get("compositeResponse", [])}
    results: list[WriteResult] = []
    for i, w in enumerate(writes):
        a = by_ref.get(f"r{i}")
        if a is None:
            results.append(
                WriteResult(w.key, False, error="no result for this record", retryable=True)
            )
            continue
        status = int(a.get("httpStatusCode") or 0)
        if 200 <= status < 300:
            results.append(WriteResult(w.key, True, crm_id=w.native_id))
            continue
        errors = a.get("body") if isinstance(a.get("body"), list) else [{}]
        code = str(errors[0].get("errorCode") or status)
        message = "; ".join(str(e.get("message", "")) for e in errors)
        results.append(
            WriteResult(
                w.key,
                False,
                error=f"{code}: {message}",
                retryable=code in RETRYABLE,
                changed=status == 412,
            )
        )
    return results


def _http_date(stamp: str) -> str:
    """An ISO stamp as an HTTP date (RFC 9110: whole seconds, GMT)."""
    when = datetime.fromisoformat(stamp)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return format_datetime(when.astimezone(UTC), usegmt=True)


def _found_duplicates(
    api: SalesforceApi, mapping: Mapping, results: list[WriteResult]
) -> list[WriteResult]:
    """A task refused with DUPLICATE_VALUE already exists under its key (the key field is
    unique: another apply, or an earlier send whose answer was lost, created it): it is looked
    up by key and confirmed, never parked."""
    taken = [r.key for r in results if not r.ok and (r.error or "").startswith(DUPLICATE)]
    if not taken:
        return results
    found = find_tasks(api, mapping, taken)
    return [
        WriteResult(r.key, True, crm_id=found[r.key]) if r.key in found and not r.ok else r
        for r in results
    ]


def _record(mapping: Mapping, kind: str, w: Write) -> dict[str, Any]:
    v = w.values
    if kind == "flag.write":
        return {
            "attributes": {"type": mapping.object},
            "id": w.native_id,
            custom_field(mapping, str(v["field"])): v.get("value"),
        }
    tasks = task_fields(mapping)
    if kind == "task.create":
        rec: dict[str, Any] = {
            "attributes": {"type": "Task"},
            "WhatId": w.native_id,
            "Subject": plain_text(v["subject"], multiline=False, limit=SUBJECT_LIMIT),
            "Description": plain_text(v.get("body") or "", multiline=True, limit=BODY_LIMIT)
            or None,
            "ActivityDate": v["due_date"],
            "Priority": PRIORITY.get(str(v.get("priority")), "Normal"),
            "Status": "Not Started",
            tasks.key_field: w.key,
        }
        if v.get("owner_id"):
            rec["OwnerId"] = v["owner_id"]
        return rec
    if kind == "task.complete":
        rec = {"attributes": {"type": "Task"}, "id": w.task_id, "Status": "Completed"}
        if tasks.note_field and v.get("note"):
            rec[tasks.note_field] = v["note"]
        return rec
    if kind == "task.due":
        return {"attributes": {"type": "Task"}, "id": w.task_id, "ActivityDate": v["due_date"]}
    raise ValueError(f"unknown write kind {kind!r}")


def find_tasks(api: SalesforceApi, mapping: Mapping, keys: Sequence[str]) -> dict[str, str]:
    """Task ids by idempotency key, for the keys that exist (one query per 200 keys)."""
    field = task_fields(mapping).key_field
    found: dict[str, str] = {}
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        quoted = ", ".join("'" + k.replace("\\", "\\\\").replace("'", "\\'") + "'" for k in chunk)
        soql = f"SELECT Id, {field} FROM Task WHERE {field} IN ({quoted})"
        first = api.call("find tasks", lambda sf, q=soql: sf.query(q))  # type: ignore[misc]
        for result in api.follow(first, {}):
            for rec in result["records"]:
                found[str(rec[field])] = str(rec["Id"])
    return found


def changed_since(
    api: SalesforceApi, mapping: Mapping, cursor: Cursor | None, fields: Sequence[str]
) -> dict[str, dict[str, Any]] | None:
    """Opportunities changed since the sync that stored `cursor` read them, with the current
    values of the named custom fields.

    SOQL compares datetimes to the second while stamps carry milliseconds
    (salesforce.stackexchange.com/q/234824), so the query asks from the cursor's second on and
    the stamps decide here at full precision: a record stamped before the cursor, or at it and
    among the ids the sync read there, is as the sync read it; a later stamp in the same second
    (or a record at the cursor's stamp the sync did not see) is a change.
    """
    if cursor is None:
        return None
    edge = parse_stamp(cursor.value)
    seen = set(cursor.ids_at_value)
    columns = {name: custom_field(mapping, name) for name in fields}
    select = ", ".join(["Id", "SystemModstamp", *dict.fromkeys(columns.values())])
    soql = (
        f"SELECT {select} FROM {mapping.object} "
        f"WHERE SystemModstamp >= {soql_datetime(edge.replace(microsecond=0))}"
    )
    first = api.call("changed since", lambda sf: sf.query(soql))
    out: dict[str, dict[str, Any]] = {}
    for result in api.follow(first, {}):
        for rec in result["records"]:
            stamp = parse_stamp(rec["SystemModstamp"])
            if stamp < edge or (stamp == edge and str(rec["Id"]) in seen):
                continue  # the last sync read it as it is now
            out[str(rec["Id"])] = {name: rec.get(col) for name, col in columns.items()}
    return out
