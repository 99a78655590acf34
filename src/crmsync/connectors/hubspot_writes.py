"""HubSpot writes: flag properties on deals and follow-up tasks, through the batch endpoints.

One call carries up to 100 inputs; a task is associated to its deal in the same create call.
Tasks carry crmsync's idempotency key in a unique-value property, so a lost answer is recovered
by reading tasks by that property (batch read with idProperty, which does not wait for search).
A task's subject is one line of plain text and its body HTML (`hs_task_body` is rich text): CRM
data in them is escaped and bounded by `crmsync.model.text`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from crmsync.connectors.base import Write, WriteResult, custom_field, task_fields
from crmsync.connectors.hubspot_api import HubSpotApi, ms, parse_time
from crmsync.model.mapping import Mapping
from crmsync.model.records import Cursor
from crmsync.model.text import SUBJECT_LIMIT, html_text, plain_text

BATCH_LIMIT = 100
SEARCH_LIMIT = 200
TASK_TO_DEAL = 216  # HubSpot-defined association type: task -> deal
PRIORITY = {"low": "LOW", "normal": "MEDIUM", "high": "HIGH"}
RETRYABLE = {"CONFLICT", "RATE_LIMITS", "LOCKED"}


def write(
    api: HubSpotApi, mapping: Mapping, kind: str, writes: Sequence[Write]
) -> list[WriteResult]:
    """One batch call for up to 100 writes of one kind; one more per repeat when a record is
    named twice (HubSpot refuses a batch that names one record twice), the later write last."""
    if len(writes) > BATCH_LIMIT:
        raise ValueError(f"at most {BATCH_LIMIT} inputs per batch call")
    batch = api.objects.batch_api
    if kind == "task.create":
        return _create_tasks(api, mapping, writes)
    object_type = "deals" if kind == "flag.write" else "tasks"

    def oid(w: Write) -> str:
        return w.native_id if kind == "flag.write" else str(w.task_id)

    answered: dict[str, WriteResult] = {}
    for part in rounds(writes, oid):
        body = {"inputs": [_update(mapping, kind, w) for w in part]}
        answer = api.call(
            f"write {kind}",
            lambda b=body: batch.update(  # type: ignore[misc]
                object_type, b, **api.raw
            ),
        )
        done = {str(r["id"]) for r in answer.get("results") or []}
        for res in _results(part, answer, functools.partial(_if_done, oid, done)):
            answered[res.key] = res
    return [answered[w.key] for w in writes]


class _Conflict(Exception):
    """HubSpot refused a whole batch create: a unique value (a task key) is taken."""


def _create_tasks(api: HubSpotApi, mapping: Mapping, writes: Sequence[Write]) -> list[WriteResult]:
    """Create tasks; a key already taken means the task exists (another apply, or an earlier
    send whose answer was lost, created it): it is looked up by key and confirmed, never
    parked. HubSpot refuses the whole batch with 409 CONFLICT naming the first taken value
    (hubspot-api-python#51), so after a lookup the rest is sent again; a per-input CONFLICT
    error (a 207) is looked up the same way."""
    batch = api.objects.batch_api
    key_field = task_fields(mapping).key_field
    done: dict[str, WriteResult] = {}
    todo = list(writes)
    while todo:
        body = {"inputs": [_create(mapping, w) for w in todo]}

        def create(b: dict[str, Any] = body) -> Any:
            try:
                return batch.create("tasks", b, **api.raw)
            except Exception as e:  # the generated package's ApiException
                if getattr(e, "status", None) == 409:
                    raise _Conflict(str(getattr(e, "body", "") or e)) from None
                raise

        try:
            answer = api.call("write task.create", create)
        except _Conflict as e:
            found = find_tasks(api, mapping, [w.key for w in todo])
            if not found:  # a unique value other than the key: the CRM's refusal stands
                for w in todo:
                    done[w.key] = WriteResult(w.key, False, error=f"CONFLICT: {e}")
                break
            for w in todo:
                if w.key in found:
                    done[w.key] = WriteResult(w.key, True, crm_id=found[w.key])
            todo = [w for w in todo if w.key not in found]
            continue
        by_key = {
            str((r.get("properties") or {}).get(key_field)): str(r["id"])
            for r in answer.get("results") or []
        }
        results = _results(todo, answer, functools.partial(_created, by_key))
        taken = [r.key for r in results if not r.ok and (r.error or "").startswith("CONFLICT")]
        found = find_tasks(api, mapping, taken) if taken else {}
        for r in results:
            if not r.ok and r.key in found:
                r = WriteResult(r.key, True, crm_id=found[r.key])
            done[r.key] = r
        break
    return [done[w.key] for w in writes]


def _created(by_key: dict[str, str], w: Write) -> str | None:
    return by_key.get(w.key)


def _if_done(oid: Callable[[Write], str], done: set[str], w: Write) -> str | None:
    return oid(w) if oid(w) in done else None


def rounds(writes: Sequence[Write], target: Callable[[Write], str]) -> list[list[Write]]:
    """The writes in as few batches as can carry them with no record named twice in one batch
    (HubSpot refuses such a batch), in order: a record's later write goes in a later batch, so
    it is the one that stays."""
    out: list[list[Write]] = []
    seen: list[set[str]] = []
    for w in writes:
        t = target(w)
        last = max((i for i, ids in enumerate(seen) if t in ids), default=-1)
        if last + 1 == len(out):
            out.append([])
            seen.append(set())
        out[last + 1].append(w)
        seen[last + 1].add(t)
    return out


def _create(mapping: Mapping, w: Write) -> dict[str, Any]:
    v = w.values
    fields = task_fields(mapping)
    props: dict[str, Any] = {
        "hs_task_subject": plain_text(v["subject"], multiline=False, limit=SUBJECT_LIMIT),
        "hs_task_body": html_text(v.get("body") or ""),  # rich text: escaped, <br> lines
        "hs_timestamp": v["due_at"],
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": PRIORITY.get(str(v.get("priority")), "MEDIUM"),
        "hs_task_type": "TODO",
        fields.key_field: w.key,
    }
    if v.get("owner_id"):
        props["hubspot_owner_id"] = v["owner_id"]
    return {
        "properties": props,
        "associations": [
            {
                "to": {"id": w.native_id},
                "types": [
                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TASK_TO_DEAL}
                ],
            }
        ],
    }


def _update(mapping: Mapping, kind: str, w: Write) -> dict[str, Any]:
    v = w.values
    if kind == "flag.write":
        return {
            "id": w.native_id,
            "properties": {custom_field(mapping, v["field"]): v.get("value") or ""},
        }
    if kind == "task.complete":
        props: dict[str, Any] = {"hs_task_status": "COMPLETED"}
        note_field = task_fields(mapping).note_field
        if note_field and v.get("note"):
            props[note_field] = v["note"]
        return {"id": w.task_id, "properties": props}
    if kind == "task.due":
        return {"id": w.task_id, "properties": {"hs_timestamp": v["due_at"]}}
    raise ValueError(f"unknown write kind {kind!r}")


def _results(writes: Sequence[Write], answer: dict[str, Any], done: Any) -> list[WriteResult]:
    """A result per write: done when the answer lists it, else the errors that name it."""
    errors = answer.get("errors") or []
    out = []
    for w in writes:
        crm_id = done(w)
        if crm_id is not None:
            out.append(WriteResult(w.key, True, crm_id=crm_id))
            continue
        own = [e for e in errors if _names(e, w)] or errors
        categories = {str(e.get("category")) for e in own}
        message = "; ".join(f"{e.get('category')}: {e.get('message')}" for e in own)
        out.append(
            WriteResult(
                w.key,
                False,
                error=message or "no result for this input",
                retryable=not own or categories <= RETRYABLE,
            )
        )
    return out


def _names(error: dict[str, Any], w: Write) -> bool:
    ids = {str(i) for i in ((error.get("context") or {}).get("ids") or [])}
    return bool(ids & {w.native_id, str(w.task_id), w.key})


def find_tasks(api: HubSpotApi, mapping: Mapping, keys: Sequence[str]) -> dict[str, str]:
    """Task ids by idempotency key, read by the unique key property (100 keys a call)."""
    field = task_fields(mapping).key_field
    batch = api.objects.batch_api
    found: dict[str, str] = {}
    for start in range(0, len(keys), BATCH_LIMIT):
        body = {
            "idProperty": field,
            "inputs": [{"id": k} for k in keys[start : start + BATCH_LIMIT]],
            "properties": [field],
            "propertiesWithHistory": [],
        }
        answer = api.call(
            "find tasks",
            lambda b=body: batch.read("tasks", b, **api.raw),  # type: ignore[misc]
        )
        for rec in answer.get("results") or []:
            found[str((rec.get("properties") or {}).get(field))] = str(rec["id"])
    return found


def changed_since(
    api: HubSpotApi, mapping: Mapping, cursor: Cursor | None, fields: Sequence[str]
) -> dict[str, dict[str, Any]] | None:
    """Deals modified after the last completed sync's window (search, paged by id), with the
    current values of the named custom properties."""
    if cursor is None:
        return None
    state = json.loads(cursor.value)
    if state.get("mode") != "incremental" or state.get("until"):
        return None  # a sync is half way: nothing can be vouched for
    since: datetime = parse_time(state["since"])
    columns = {name: custom_field(mapping, name) for name in fields}
    out: dict[str, dict[str, Any]] = {}
    last_id = 0
    while True:
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GT",
                            "value": str(ms(since)),
                        },
                        {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": ["hs_object_id", *dict.fromkeys(columns.values())],
            "limit": SEARCH_LIMIT,
        }
        answer = api.call(
            "changed since",
            lambda b=body: api.deals.search_api.do_search(  # type: ignore[misc]
                b, **api.raw
            ),
        )
        results = answer["results"]
        for r in results:
            props = r.get("properties") or {}
            out[str(r["id"])] = {name: props.get(col) or None for name, col in columns.items()}
        if len(results) < SEARCH_LIMIT:
            return out
        last_id = int(results[-1]["id"])
