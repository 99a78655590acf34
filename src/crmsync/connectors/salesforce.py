"""The Salesforce connector: Opportunities through simple-salesforce over the REST API.

Incremental pulls use queryAll ordered by (SystemModstamp, Id), so soft deletes arrive with the
changes, and the getDeleted resource catches hard deletes. Stage history comes from
OpportunityHistory. Every call is counted, retried when worth it, and checked against the quota.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)

from crmsync.connectors import salesforce_writes as writes
from crmsync.connectors.base import ApiMeter, Page, Write, WriteResult
from crmsync.connectors.retry import Retriable, call_with_retries
from crmsync.connectors.salesforce_auth import Session, login
from crmsync.connectors.settings import SalesforceAuth, SyncSettings
from crmsync.errors import CrmApiError, InvalidInput, QuotaStop
from crmsync.model import Opportunity
from crmsync.model.mapping import Mapping
from crmsync.model.normalize import NormalizeError, convert, normalize
from crmsync.model.records import Cursor, HistoryRow, SetAside

T = TypeVar("T")
log = structlog.get_logger("crmsync.salesforce")

API_VERSION = "59.0"
MAX_BATCH = 2000
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
GET_DELETED_DAYS = 15


class SalesforceConnector:
    """One Salesforce org; `connection` is its name in crmsync's config."""

    source = "salesforce"

    def __init__(
        self,
        connection: str,
        auth: SalesforceAuth,
        mapping: Mapping,
        settings: SyncSettings | None = None,
        api_version: str = API_VERSION,
    ) -> None:
        self.connection = connection
        self.auth = auth
        self.mapping = mapping
        self.settings = settings or SyncSettings()
        self.api_version = api_version
        self.object_name = mapping.object
        self.meter = ApiMeter()
        self.http = requests.Session()
        if auth.ca_file is not None:
            self.http.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
            self.http.verify = str(auth.ca_file)
        self.http.hooks["response"].append(self._on_response)
        self._last_response: requests.Response | None = None
        self._sf: Salesforce | None = None
        self.batch_size = min(self.settings.page_size or MAX_BATCH, MAX_BATCH)

    # ---- plumbing ---------------------------------------------------------------------
    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = Salesforce.parse_api_usage(info).get("api-usage")
            if usage is not None:
                self.meter.read_quota(usage.used, usage.total)

    def _login(self) -> Salesforce:
        def attempt() -> Session:
            self.meter.count()
            return login(self.auth, self.http, self.settings.timeout_seconds)

        session = call_with_retries(
            attempt,
            retries=self.settings.max_retries,
            base_wait=self.settings.retry_base_seconds,
            what="login",
            connection=self.connection,
            crm="salesforce",
        )
        self._sf = Salesforce(
            instance_url=session.instance_url,
            session_id=session.access_token,
            session=self.http,
            version=self.api_version,
            object_pairs_hook=None,
        )
        return self._sf

    @property
    def sf(self) -> Salesforce:
        return self._sf or self._login()

    def _call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """One API call: quota guard, counting, retries, and one re-login on an expired session."""
        relogged = False

        def attempt() -> T:
            nonlocal relogged
            self._guard_quota()
            self.meter.count()
            try:
                return fn(self.sf)
            except SalesforceExpiredSession:
                if relogged or self.auth.method == "access_token":
                    raise CrmApiError(
                        f"salesforce {self.connection}: session expired and cannot "
                        "be renewed; check the credentials"
                    ) from None
                relogged = True
                log.info("salesforce.relogin", connection=self.connection)
                self._login()
                raise Retriable("session expired", retry_after=0) from None
            except SalesforceRefusedRequest as e:
                if _code(e) == "REQUEST_LIMIT_EXCEEDED":
                    raise QuotaStop(
                        f"salesforce {self.connection}: daily API limit reached "
                        "(REQUEST_LIMIT_EXCEEDED); the sync resumes next run"
                    ) from None
                raise CrmApiError(f"salesforce {self.connection}: {what}: {_message(e)}") from None
            except SalesforceError as e:
                if e.status == 429 or e.status >= 500:
                    raise Retriable(f"{e.status} {_message(e)}", self._retry_after()) from None
                raise CrmApiError(f"salesforce {self.connection}: {what}: {_message(e)}") from None
            except (requests.ConnectionError, requests.Timeout) as e:
                raise Retriable(type(e).__name__) from None

        return call_with_retries(
            attempt,
            retries=self.settings.max_retries,
            base_wait=self.settings.retry_base_seconds,
            what=what,
            connection=self.connection,
            crm="salesforce",
        )

    def _retry_after(self) -> float | None:
        value = self._last_response.headers.get("Retry-After") if self._last_response else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def _guard_quota(self) -> None:
        self.meter.guard(self.settings.quota_share, "salesforce", self.connection)

    def _server_time(self) -> datetime | None:
        value = self._last_response.headers.get("Date") if self._last_response else None
        try:
            return parsedate_to_datetime(value).astimezone(UTC) if value else None
        except (TypeError, ValueError):
            return None

    # ---- the protocol -----------------------------------------------------------------
    def check(self) -> None:
        """Log in and confirm every mapped field exists on the object (one describe call)."""
        described = self._call("describe", lambda sf: getattr(sf, self.object_name).describe())
        known = {f["name"].lower(): f for f in described["fields"]}
        relations = {
            f["relationshipName"].lower() for f in described["fields"] if f.get("relationshipName")
        }
        where = f" in {self.mapping.path}" if self.mapping.path else ""
        for name in self.mapping.crm_fields():
            head = name.split(".", 1)[0].lower()
            if "." in name and head not in relations:
                raise InvalidInput(
                    f"mapping{where}: {self.object_name} has no relationship "
                    f"'{name.split('.', 1)[0]}' (field {name})"
                )
            if "." not in name and name.lower() not in known:
                raise InvalidInput(f"mapping{where}: {self.object_name} has no field '{name}'")

    def soql_fields(self) -> list[str]:
        fields = ["Id", "IsDeleted", "SystemModstamp"]
        for name in self.mapping.crm_fields():
            if name.lower() not in (f.lower() for f in fields):
                fields.append(name)
        return fields

    def pull(self, cursor: Cursor | None, *, started_at: datetime) -> Iterator[Page]:
        """Changes since `cursor` (everything when None), soft deletes included, then history."""
        since = None
        if cursor is not None:
            since = _parse_stamp(cursor.value) - timedelta(seconds=self.settings.overlap_seconds)
        where = f" WHERE SystemModstamp >= {_soql_datetime(since)}" if since else ""
        soql = (
            f"SELECT {', '.join(self.soql_fields())} FROM {self.object_name}{where} "
            "ORDER BY SystemModstamp, Id"
        )
        seen_at_value = set(cursor.ids_at_value) if cursor and cursor.ids_at_value else set()
        yield from self._pages(soql, cursor, seen_at_value)
        if cursor is not None and since is not None:
            yield from self._hard_deletes(since)

    def _pages(self, soql: str, cursor: Cursor | None, skip: set[str]) -> Iterator[Page]:
        headers = {"Sforce-Query-Options": f"batchSize={self.batch_size}"}
        result = self._call(
            "query", lambda sf: sf.query(soql, include_deleted=True, headers=headers)
        )
        query_start = (self._server_time() or datetime.now(UTC)) - timedelta(seconds=1)
        mark = cursor
        while True:
            page = Page(fetched=len(result["records"]))
            for rec in result["records"]:
                stamp = rec["SystemModstamp"]
                if cursor is not None and stamp == cursor.value and rec["Id"] in skip:
                    continue
                self._add_record(page, rec)
                if _parse_stamp(stamp) < query_start:  # not changed since the query began
                    if mark is not None and mark.value == stamp:
                        mark = Cursor(stamp, (*mark.ids_at_value, rec["Id"]))
                    elif mark is None or stamp > mark.value:
                        mark = Cursor(stamp, (rec["Id"],))
            page.cursor = mark
            yield page
            if result["done"]:
                return
            result = self._more(result["nextRecordsUrl"], headers)

    def _add_record(self, page: Page, rec: dict[str, Any]) -> None:
        if rec.get("IsDeleted"):
            page.deleted_ids.append(str(rec["Id"]))
            return
        values = _flatten(rec)
        try:
            page.opportunities.append(normalize(self.connection, rec["Id"], values, self.mapping))
        except NormalizeError as e:
            page.set_aside.append(SetAside(rec["Id"], str(e), _jsonable(values)))

    def _hard_deletes(self, since: datetime) -> Iterator[Page]:
        """Records purged from the recycle bin, through the getDeleted resource."""
        now = self._server_time() or datetime.now(UTC)
        earliest = now - timedelta(days=GET_DELETED_DAYS) + timedelta(minutes=5)
        if since < earliest:
            log.warning(
                "salesforce.deletes_window_exceeded",
                connection=self.connection,
                hint="last sync is older than 15 days; run `crmsync sync --reconcile`",
            )
            since = earliest
        answer = self._call(
            "getDeleted", lambda sf: getattr(sf, self.object_name).deleted(since, now)
        )
        ids = [r["id"] for r in answer.get("deletedRecords", [])]
        if ids:
            yield Page(deleted_ids=ids)

    def pull_history(
        self, cursor: Cursor | None, keys_known: Callable[[str], bool] | None = None
    ) -> Iterator[Page]:
        """OpportunityHistory rows (immutable) since `cursor`, as CRM field history."""
        where = ""
        if cursor is not None:
            since = _parse_stamp(cursor.value) - timedelta(seconds=self.settings.overlap_seconds)
            where = f" WHERE CreatedDate >= {_soql_datetime(since)}"
        soql = (
            f"SELECT {', '.join(HISTORY_FIELDS)} FROM OpportunityHistory{where} "
            "ORDER BY CreatedDate, Id"
        )
        headers = {"Sforce-Query-Options": f"batchSize={MAX_BATCH}"}
        result = self._call("query", lambda sf: sf.query(soql, headers=headers))
        query_start = (self._server_time() or datetime.now(UTC)) - timedelta(seconds=1)
        mark = cursor
        previous: dict[tuple[str, str], str | None] = {}
        while True:
            page = Page(fetched=len(result["records"]))
            for row in result["records"]:
                key = f"{self.connection}:{row['OpportunityId']}"
                when = _parse_stamp(row["CreatedDate"])
                for column, (field, prev_column) in HISTORY_MAP.items():
                    value = _history_text(field, row.get(column))
                    if prev_column is not None:  # Salesforce says what the value was before
                        old = _history_text(field, row.get(prev_column))
                        first = row.get(prev_column) is None and (key, field) not in previous
                        if old == value and not first:
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
            if result["done"]:
                return
            result = self._more(result["nextRecordsUrl"], headers)

    def _more(self, next_url: str, headers: dict[str, str]) -> Any:
        """The next page of a query, by its nextRecordsUrl."""
        return self._call(
            "query_more",
            lambda sf: sf.query_more(next_url, identifier_is_url=True, headers=headers),
        )

    def list_ids(self) -> Iterator[str]:
        headers = {"Sforce-Query-Options": f"batchSize={MAX_BATCH}"}
        soql = f"SELECT Id FROM {self.object_name} ORDER BY Id"
        result = self._call("query", lambda sf: sf.query(soql, headers=headers))
        while True:
            for rec in result["records"]:
                yield str(rec["Id"])
            if result["done"]:
                return
            result = self._more(result["nextRecordsUrl"], headers)

    def reread(self, ids: Sequence[str]) -> Iterator[Page]:
        """Full records for `ids`, 200 at a time (SOQL IN lists stay well under URL limits)."""
        fields = ", ".join(self.soql_fields())
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            quoted = ", ".join(f"'{i}'" for i in chunk)
            soql = f"SELECT {fields} FROM {self.object_name} WHERE Id IN ({quoted})"
            result = self._call("query", lambda sf, q=soql: sf.query(q))  # type: ignore[misc]
            page = Page(fetched=len(result["records"]))
            for rec in result["records"]:
                self._add_record(page, rec)
            yield page

    # ---- writes (crmsync.connectors.salesforce_writes) -----------------------------------
    write_batch_size = writes.COLLECTION_LIMIT

    def write(self, kind: str, batch: Sequence[Write]) -> list[WriteResult]:
        return writes.write(self, kind, batch)

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        return writes.find_tasks(self, keys)

    def changed_since(
        self, cursor: Cursor | None, fields: Sequence[str]
    ) -> dict[str, dict[str, Any]] | None:
        return writes.changed_since(self, cursor, fields)

    def close(self) -> None:
        self.http.close()


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


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(json.dumps(values, default=str))
    return parsed


def _parse_stamp(text: str) -> datetime:
    value = convert("datetime", text, "SystemModstamp")
    assert isinstance(value, datetime)
    return value


def _soql_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _history_text(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if field == "amount":
        return str(convert("decimal", value, field))
    return str(value)


def _code(e: SalesforceError) -> str | None:
    content = e.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode"))
    return None


def _message(e: SalesforceError) -> str:
    content = e.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return f"{first.get('errorCode')}: {' '.join(str(first.get('message', '')).split())}"
    return f"HTTP {e.status}"


__all__ = ["Opportunity", "SalesforceConnector"]
