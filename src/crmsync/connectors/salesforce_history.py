"""Field history from OpportunityHistory: the immutable rows Salesforce writes on each stage,
amount or close-date change, turned into crmsync's CRM history (origin "crm").

Kept apart from the record pull because it has its own cursor (CreatedDate) and its own rules for
telling a change from a repeat. A history value crmsync cannot keep (an amount of 1e309, a NUL in
a stage name: `crmsync.model.limits`) is skipped and logged (`salesforce.history_value_skipped`);
the row's other values are kept. Salesforce never changes a history row, so a skipped value stays
skipped and never stops a sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from crmsync.connectors.base import Page
from crmsync.connectors.salesforce_api import MAX_BATCH, SalesforceApi, parse_stamp, soql_datetime
from crmsync.model.limits import text_problem
from crmsync.model.normalize import NormalizeError, convert
from crmsync.model.records import Cursor, HistoryRow

log = structlog.get_logger("crmsync.salesforce")

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
    """OpportunityHistory rows (immutable) since `cursor`, as CRM field history.

    Rows come ordered by opportunity, then CreatedDate, so telling a stage change from a repeat
    needs only the current opportunity's last values: memory stays flat however many deals
    the pull covers. The cursor (the newest CreatedDate read) therefore rides on the last
    page only; a pull stopped before it reads the same rows again next time (rows already
    stored are skipped by the store).
    """
    where = ""
    if cursor is not None:
        since = parse_stamp(cursor.value) - timedelta(seconds=api.settings.overlap_seconds)
        where = f" WHERE CreatedDate >= {soql_datetime(since)}"
    soql = (
        f"SELECT {', '.join(HISTORY_FIELDS)} FROM OpportunityHistory{where} "
        "ORDER BY OpportunityId, CreatedDate, Id"
    )
    headers = {"Sforce-Query-Options": f"batchSize={MAX_BATCH}"}
    first = api.call("query", lambda sf: sf.query(soql, headers=headers))
    query_start = (api.server_time() or datetime.now(UTC)) - timedelta(seconds=1)
    newest = cursor.value if cursor is not None else None
    deal: str | None = None
    previous: dict[str, str | None] = {}  # the current opportunity's last value per field
    page = Page()
    for result in api.follow(first, headers):
        page = Page(fetched=len(result["records"]))
        for row in result["records"]:
            key = f"{api.connection}:{row['OpportunityId']}"
            if key != deal:
                deal, previous = key, {}
            when = _created(api.connection, row)
            if when is None:
                continue
            _rows(api.connection, row, key, when, previous, page)
            if when < query_start and (newest is None or row["CreatedDate"] > newest):
                newest = row["CreatedDate"]
        if not result["done"]:
            yield page
    if newest is not None:
        page.cursor = Cursor(newest, ())
    yield page


def _rows(
    connection: str,
    row: dict[str, Any],
    key: str,
    when: datetime,
    previous: dict[str, str | None],
    page: Page,
) -> None:
    """The history rows one OpportunityHistory row gives, onto `page`; `previous` holds the
    opportunity's values read before it in this pull."""
    for column, (field, prev_column) in HISTORY_MAP.items():
        try:
            value = _history_text(field, row.get(column), column)
        except NormalizeError as e:
            _skipped(connection, row, e)
            continue
        if prev_column is not None:  # Salesforce says what the value was before
            try:
                old = _history_text(field, row.get(prev_column), prev_column)
            except NormalizeError as e:  # the change is kept, from an unknown value
                _skipped(connection, row, e)
                old = None
            first_seen = row.get(prev_column) is None and field not in previous
            if old == value and not first_seen:
                continue
        else:  # stages: compare with the row before it, when this pull has it
            old = previous.get(field)
            if field in previous and old == value:
                continue
        previous[field] = value
        page.history.append(HistoryRow(key, field, old, value, when, "crm"))


def _created(connection: str, row: dict[str, Any]) -> datetime | None:
    """The row's CreatedDate; None (the row skipped and logged) when it is not a stamp."""
    raw = row.get("CreatedDate")
    try:
        when = convert("datetime", raw, "CreatedDate") if isinstance(raw, str) else None
    except NormalizeError as e:
        _skipped(connection, row, e)
        return None
    if not isinstance(when, datetime):
        _skipped(connection, row, NormalizeError("CreatedDate", raw, "is not a stamp"))
        return None
    return when


def _skipped(connection: str, row: dict[str, Any], error: Exception) -> None:
    log.warning(
        "salesforce.history_value_skipped",
        connection=connection,
        opportunity=str(row.get("OpportunityId")),
        history_id=str(row.get("Id")),
        reason=f"OpportunityHistory.{error}",
    )


def _history_text(field: str, value: Any, column: str) -> str | None:
    """The history value as stored (see records.history_value); NormalizeError when it is not
    one crmsync can keep."""
    if value is None:
        return None
    if field == "amount":
        return str(convert("decimal", value, column))
    text = value if isinstance(value, str) else str(value)
    problem = text_problem(text)
    if problem is not None:
        raise NormalizeError(column, value, problem)
    return text
