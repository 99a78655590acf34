"""HubSpot tasks read back before crmsync changes them, so that a rep's edits win.

One batch read per 100 ids (`POST /crm/v3/objects/tasks/batch/read`, at most 100 inputs a
call: ../shared/CRM_API_FACTS.md, "Batch"; developers.hubspot.com/docs/api-reference/latest/
crm/activities/tasks/batch). Archived (deleted) tasks are not returned unless asked for: they
come back in `errors` (OBJECT_NOT_FOUND, a 207), so an id missing from the results is a task
someone deleted. `hs_task_status` COMPLETED is done; `hs_timestamp` is the due moment.
"""

from __future__ import annotations

from collections.abc import Sequence

from crmsync.connectors.base import TaskState
from crmsync.connectors.hubspot_api import HubSpotApi, parse_time

BATCH_LIMIT = 100
PROPERTIES = ["hs_task_status", "hs_timestamp"]
DISMISS = "DEFERRED"  # the status a rep sets to dismiss a finding, unless the mapping names one


def read_tasks(
    api: HubSpotApi, task_ids: Sequence[str], dismiss: str = DISMISS
) -> dict[str, TaskState]:
    """The live tasks among `task_ids`, by id, with their status and due moment."""
    ids = list(dict.fromkeys(task_ids))
    batch = api.objects.batch_api
    out: dict[str, TaskState] = {}
    for start in range(0, len(ids), BATCH_LIMIT):
        body = {
            "inputs": [{"id": i} for i in ids[start : start + BATCH_LIMIT]],
            "properties": PROPERTIES,
            "propertiesWithHistory": [],
        }
        answer = api.call(
            "read tasks",
            lambda b=body: batch.read("tasks", b, **api.raw),  # type: ignore[misc]
        )
        for rec in answer.get("results") or []:
            props = rec.get("properties") or {}
            due = props.get("hs_timestamp")
            out[str(rec["id"])] = TaskState(
                completed=props.get("hs_task_status") == "COMPLETED",
                dismissed=props.get("hs_task_status") == dismiss,
                due_at=parse_time(str(due)) if due else None,
            )
    return out
