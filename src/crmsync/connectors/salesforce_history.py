"""Field history from OpportunityHistory: the immutable rows Salesforce writes on each stage,
amount or close-date change, turned into crmsync's CRM history (origin "crm").

Kept apart from the record pull because it has its own cursor (CreatedDate) and its own rules for
telling a change from a repeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.connectors.base import Page
from crmsync.connectors.salesforce_api import MAX_BATCH, SalesforceApi, parse_stamp, soql_datetime
from crmsync.model.normalize import convert
from crmsync.model.records import Cursor, HistoryRow

HISTORY_FIELDS = (
    "Id",
    "OpportunityId",
    "StageName",
    "Amount",
    "PrevAmount",
    "CloseDate",
    "PrevCloseDate",
    "CreatedDate",
)
# OpportunityHistory column -> (tracked normalized field, the column holding its previous value)
HISTORY_MAP = {
    "StageName": ("stage", None),
    "Amount": ("amount", "PrevAmount"),
    "CloseDate": ("close_date", "PrevCloseDate"),
}


def pull_history(api: SalesforceApi, cursor: Cursor | None) -> Iterator[Page]:
    """OpportunityHistory rows (immutable) since `cursor`, as CRM field history."""
    where = ""
    if cursor is not None:
        since = parse_stamp(cursor.value) - timedelta(seconds=api.settings.overlap_seconds)
        where = f" WHERE CreatedDate >= {soql_datetime(since)}"
    soql = (
        f"SELECT {', '.join(HISTORY_FIELDS)} FROM OpportunityHistory{where} "
        "ORDER BY CreatedDate, Id"
    )
    headers = {"Sforce-Query-Options": f"batchSize={MAX_BATCH}"}
    first = api.call("query", lambda sf: sf.query(soql, headers=headers))
    query_start = (api.server_time() or datetime.now(UTC)) - timedelta(seconds=1)
    mark = cursor
    previous: dict[tuple[str, str], str | None] = {}
    for result in api.follow(first, headers):
        page = Page(fetched=len(result["records"]))
        for row in result["records"]:
            key = f"{api.connection}:{row['OpportunityId']}"
            when = parse_stamp(row["CreatedDate"])
            for column, (field, prev_column) in HISTORY_MAP.items():
                value = _history_text(field, row.get(column))
                if prev_column is not None:  # Salesforce says what the value was before
                    old = _history_text(field, row.get(prev_column))
                    first_seen = row.get(prev_column) is None and (key, field) not in previous
                    if old == value and not first_seen:
                        continue
                else:  # stages: compare with the row before it, when this pull has it
                    old = previous.get((key, field))
                    if (key, field) in previous and old == value:
                        continue
                previous[(key, field)] = value
                page.history.append(HistoryRow(key, field, old, value, when, "crm"))
            if when < query_start and (mark is None or row["CreatedDate"] > mark.value):
                mark = Cursor(row["CreatedDate"], ())
        page.cursor = mark
        yield page


def _history_text(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if field == "amount":
        return str(convert("decimal", value, field))
    return str(value)
