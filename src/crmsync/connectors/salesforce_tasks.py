"""Salesforce Tasks read back before crmsync changes them, so that a rep's edits win.

One SOQL query per 200 ids (`Id IN (...)` lists stay well under the URL limit). A query never
returns a deleted Task (the recycle bin needs queryAll, a purged one is gone): an id missing from
the answer is a task someone deleted. `IsClosed` says whether the task is done whatever the
org calls its closed statuses; `ActivityDate` is its due day (../shared/CRM_API_FACTS.md).
A query also leaves out archived activities (closed tasks due over a year ago): such a task
reads as deleted, which leaves it alone just the same (nothing is written to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from crmsync.connectors.base import TaskState
from crmsync.connectors.salesforce_api import SalesforceApi

IDS_PER_QUERY = 200
DISMISS = "Deferred"  # the status a rep sets to dismiss a finding, unless the mapping names one


def read_tasks(
    api: SalesforceApi, task_ids: Sequence[str], dismiss: str = DISMISS
) -> dict[str, TaskState]:
    """The live tasks among `task_ids`, by the id asked for, with their status and due day."""
    ids = list(dict.fromkeys(task_ids))
    out: dict[str, TaskState] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start : start + IDS_PER_QUERY]
        quoted = ", ".join("'" + i.replace("\\", "\\\\").replace("'", "\\'") + "'" for i in chunk)
        soql = f"SELECT Id, Status, IsClosed, ActivityDate FROM Task WHERE Id IN ({quoted})"
        first = api.call("read tasks", lambda sf, q=soql: sf.query(q))  # type: ignore[misc]
        found: dict[str, TaskState] = {}
        for result in api.follow(first, {}):
            for rec in result["records"]:
                day = rec.get("ActivityDate")
                state = TaskState(
                    completed=bool(rec.get("IsClosed")),
                    dismissed=rec.get("Status") == dismiss,
                    due_date=date.fromisoformat(str(day)[:10]) if day else None,
                )
                found[str(rec["Id"])] = found[str(rec["Id"])[:15]] = state
        for asked in chunk:  # an 18-character id answers for its 15-character form too
            live = found.get(asked) or found.get(asked[:15])
            if live is not None:
                out[asked] = live
    return out
