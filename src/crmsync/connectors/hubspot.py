"""The HubSpot connector: deals through hubspot-api-client over the CRM v3 API.

A full pull pages the deals list (100 a call) by id; an incremental pull searches a closed time
window `[since - overlap, query start]` and pages inside it by numeric `hs_object_id`
(GT last id, ascending), so the search API's 10,000-result cap never truncates a sync. Archived
deals arrive through the list endpoint with `archived=true`. Stage ids resolve through the
pipelines API and owners through the owners API. Responses are read as raw JSON (the client's
model objects cost more than the HTTP does) while the client still makes every request.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import hubspot
import structlog
import urllib3
from hubspot.crm.deals import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest

from crmsync.connectors import hubspot_writes as writes
from crmsync.connectors.base import ApiMeter, Page, Write, WriteResult
from crmsync.connectors.retry import Retriable, call_with_retries
from crmsync.connectors.settings import HubSpotAuth, SyncSettings
from crmsync.errors import AuthFailed, CrmApiError, InvalidInput, QuotaStop
from crmsync.model.mapping import Mapping
from crmsync.model.normalize import NormalizeError, convert, normalize
from crmsync.model.records import Cursor, SetAside

T = TypeVar("T")
log = structlog.get_logger("crmsync.hubspot")

LIST_LIMIT = 100
SEARCH_LIMIT = 200
BATCH_LIMIT = 100
DERIVED = (
    "@owner.name",
    "@owner.email",
    "@owner.active",
    "@stage.label",
    "@stage.probability",
    "@stage.is_closed",
    "@stage.is_won",
    "@pipeline.label",
)


@dataclass(frozen=True)
class StageInfo:
    id: str
    label: str
    pipeline_label: str
    probability: float | None
    is_closed: bool


@dataclass(frozen=True)
class OwnerInfo:
    name: str | None
    email: str | None
    active: bool


class HubSpotConnector:
    """One HubSpot portal; `connection` is its name in crmsync's config."""

    source = "hubspot"

    def __init__(
        self,
        connection: str,
        auth: HubSpotAuth,
        mapping: Mapping,
        settings: SyncSettings | None = None,
    ) -> None:
        self.connection = connection
        self.auth = auth
        self.mapping = mapping
        self.settings = settings or SyncSettings()
        self.object_name = mapping.object
        self.meter = ApiMeter()
        options: dict[str, Any] = {
            "access_token": auth.access_token,
            "host": auth.base_url.rstrip("/"),
            # retries are crmsync's (counted, Retry-After honoured), not urllib3's silent ones
            "retry": urllib3.util.Retry(
                total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False
            ),
        }
        if auth.ca_file is not None:
            options["ssl_ca_cert"] = str(auth.ca_file)
        self.client = hubspot.Client.create(**options)
        self._deals = self.client.crm.deals
        self.search_limit = min(self.settings.page_size or SEARCH_LIMIT, SEARCH_LIMIT)
        self._stages: dict[str, StageInfo] | None = None
        self._owners: dict[str, OwnerInfo] | None = None
        self._server_time: datetime | None = None

    # ---- plumbing ---------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], urllib3.HTTPResponse]) -> Any:
        """One API call returning parsed JSON: quota guard, counting, retries."""

        def attempt() -> Any:
            self._guard_quota()
            self.meter.count()
            try:
                response = fn()
            except urllib3.exceptions.HTTPError as e:
                raise Retriable(type(e).__name__) from None
            except Exception as e:  # each generated package has its own ApiException class
                status = getattr(e, "status", None)
                if status is None:
                    raise
                self._read_headers(getattr(e, "headers", None) or {})
                self._raise_for(what, int(status), _body(e), getattr(e, "headers", None) or {})
            self._read_headers(response.headers)
            data = response.data
            return json.loads(data) if data else None

        return call_with_retries(
            attempt,
            retries=self.settings.max_retries,
            base_wait=self.settings.retry_base_seconds,
            what=what,
            connection=self.connection,
            crm="hubspot",
        )

    def _raise_for(self, what: str, status: int, body: dict[str, Any], headers: Any) -> None:
        message = body.get("message") or f"HTTP {status}"
        if status == 429:
            if body.get("policyName") == "DAILY":
                raise QuotaStop(
                    f"hubspot {self.connection}: daily API limit reached; the sync resumes next run"
                )
            retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
            raise Retriable(f"429 {message}", float(retry_after) if retry_after else None)
        if status >= 500 or status == 0:
            raise Retriable(f"{status} {message}")
        if status == 401:
            raise AuthFailed(
                f"hubspot {self.connection}: {body.get('category', 'unauthorized')}: {message}"
            )
        raise CrmApiError(
            f"hubspot {self.connection}: {what}: {body.get('category', status)}: {message}"
        )

    def _read_headers(self, headers: Any) -> None:
        get = headers.get if hasattr(headers, "get") else (lambda _k: None)
        limit, remaining = (
            get("X-HubSpot-RateLimit-Daily"),
            get("X-HubSpot-RateLimit-Daily-Remaining"),
        )
        if limit and remaining:
            self.meter.read_quota(int(limit) - int(remaining), int(limit))
        date = get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                self._server_time = parsedate_to_datetime(date).astimezone(UTC)

    def _guard_quota(self) -> None:
        self.meter.guard(self.settings.quota_share, "hubspot", self.connection)

    def _now(self) -> datetime:
        return self._server_time or datetime.now(UTC)

    # ---- reference data ---------------------------------------------------------------
    def stages(self) -> dict[str, StageInfo]:
        if self._stages is None:
            body = self._call(
                "pipelines",
                lambda: self.client.crm.pipelines.pipelines_api.get_all(
                    object_type="deals", _preload_content=False
                ),
            )
            self._stages = {}
            for pipeline in body["results"]:
                for stage in pipeline["stages"]:
                    meta = stage.get("metadata") or {}
                    prob = meta.get("probability")
                    self._stages[stage["id"]] = StageInfo(
                        stage["id"],
                        stage["label"],
                        pipeline["label"],
                        float(prob) if prob not in (None, "") else None,
                        str(meta.get("isClosed", "false")).lower() == "true",
                    )
        return self._stages

    def owners(self) -> dict[str, OwnerInfo]:
        if self._owners is None:
            self._owners = {}
            for archived in (False, True):
                after = None
                while True:
                    body = self._call(
                        "owners",
                        lambda a=after, arch=archived: (  # type: ignore[misc]
                            self.client.crm.owners.owners_api.get_page(
                                limit=500, after=a, archived=arch, _preload_content=False
                            )
                        ),
                    )
                    for o in body["results"]:
                        name = " ".join(p for p in (o.get("firstName"), o.get("lastName")) if p)
                        self._owners[str(o["id"])] = OwnerInfo(
                            name or None, o.get("email"), not o.get("archived", False)
                        )
                    after = ((body.get("paging") or {}).get("next") or {}).get("after")
                    if not after:
                        break
        return self._owners

    # ---- the protocol -----------------------------------------------------------------
    def properties(self) -> list[str]:
        props = ["hs_lastmodifieddate", "dealstage", "pipeline", "hubspot_owner_id"]
        for name in self.mapping.crm_fields():
            if name not in props:
                props.append(name)
        return props

    def check(self) -> None:
        """Confirm every mapped property exists on deals (one properties call)."""
        body = self._call(
            "properties",
            lambda: self.client.crm.properties.core_api.get_all(
                object_type=self.object_name, _preload_content=False
            ),
        )
        known = {p["name"] for p in body["results"]}
        where = f" in {self.mapping.path}" if self.mapping.path else ""
        for name in self.mapping.crm_fields():
            if name not in known:
                raise InvalidInput(
                    f"mapping{where}: HubSpot {self.object_name} have no property '{name}'"
                )
        for src in (*self.mapping.fields.values(), *self.mapping.custom.values()):
            if src.field.startswith("@") and src.field not in DERIVED:
                raise InvalidInput(
                    f"mapping{where}: unknown derived source '{src.field}'; "
                    f"expected one of {', '.join(DERIVED)}"
                )

    def pull(self, cursor: Cursor | None, *, started_at: datetime) -> Iterator[Page]:
        state = json.loads(cursor.value) if cursor is not None else {"mode": "full"}
        self._stages = self._owners = None  # owners and stages change: read them each sync
        self.stages()
        self.owners()  # reference data first: their answers also tell the CRM's time
        if state.get("mode") == "full":
            yield from self._pull_full(state)
        else:
            yield from self._pull_window(state)
        yield from self._pull_archived()

    def _pull_full(self, state: dict[str, Any]) -> Iterator[Page]:
        """Every live deal through the list endpoint, resumable after any page."""
        after = state.get("after")
        started = state.get("started")
        props = self.properties()
        while True:
            body = self._call(
                "list",
                lambda a=after: self._deals.basic_api.get_page(  # type: ignore[misc]
                    limit=LIST_LIMIT,
                    after=a,
                    properties=props,
                    archived=False,
                    _preload_content=False,
                ),
            )
            if started is None:
                started = _iso(self._now() - timedelta(seconds=1))
            page = self._page(body["results"])
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if after:
                page.cursor = Cursor(
                    json.dumps({"mode": "full", "after": after, "started": started}), ()
                )
                yield page
            else:
                page.cursor = Cursor(json.dumps({"mode": "incremental", "since": started}), ())
                yield page
                return

    def _pull_window(self, state: dict[str, Any]) -> Iterator[Page]:
        """Deals modified in [since - overlap, until], paged by id so no cap applies."""
        since = _parse(state["since"])
        low = since - timedelta(seconds=self.settings.overlap_seconds)
        until = _parse(state["until"]) if state.get("until") else None
        last_id = int(state.get("after_id") or 0)
        if until is None:  # the window closes at the CRM's time, just before the first search
            until = self._now() - timedelta(seconds=1)
        props = self.properties()
        while True:
            request = PublicObjectSearchRequest(
                filter_groups=[
                    {
                        "filters": [
                            {
                                "propertyName": "hs_lastmodifieddate",
                                "operator": "GTE",
                                "value": str(_ms(low)),
                            },
                            {
                                "propertyName": "hs_lastmodifieddate",
                                "operator": "LTE",
                                "value": str(_ms(until)),
                            },
                            {
                                "propertyName": "hs_object_id",
                                "operator": "GT",
                                "value": str(last_id),
                            },
                        ]
                    }
                ],
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=props,
                limit=self.search_limit,
            )
            body = self._call(
                "search",
                lambda r=request: self._deals.search_api.do_search(  # type: ignore[misc]
                    r, _preload_content=False
                ),
            )
            results = body["results"]
            page = self._page(results)
            if results:
                last_id = int(results[-1]["id"])
            done = len(results) < self.search_limit
            state = (
                {"mode": "incremental", "since": _iso(until)}
                if done
                else {
                    "mode": "incremental",
                    "since": _iso(since),
                    "until": _iso(until),
                    "after_id": last_id,
                }
            )
            page.cursor = Cursor(json.dumps(state), ())
            yield page
            if done:
                return

    def _pull_archived(self) -> Iterator[Page]:
        """Archived deals (HubSpot's deletes): the list endpoint is the only way to see them."""
        ids = list(self._list_ids(archived=True))
        for start in range(0, len(ids), LIST_LIMIT):
            chunk = ids[start : start + LIST_LIMIT]
            yield Page(deleted_ids=chunk, fetched=len(chunk))

    def _list_ids(self, *, archived: bool) -> Iterator[str]:
        """Every deal id, live or archived, paging the list endpoint."""
        after = None
        while True:
            body = self._call(
                "list_archived" if archived else "list",
                lambda a=after: self._deals.basic_api.get_page(  # type: ignore[misc]
                    limit=LIST_LIMIT,
                    after=a,
                    properties=["hs_object_id"],
                    archived=archived,
                    _preload_content=False,
                ),
            )
            for r in body["results"]:
                yield str(r["id"])
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def _page(self, results: list[dict[str, Any]]) -> Page:
        page = Page(fetched=len(results))
        stages, owners = self.stages(), self.owners()
        for rec in results:
            props = rec["properties"]
            values: dict[str, Any] = dict(props)
            stage = stages.get(props.get("dealstage") or "")
            owner = owners.get(props.get("hubspot_owner_id") or "")
            if stage is not None:
                values.update(
                    {
                        "@stage.label": stage.label,
                        "@pipeline.label": stage.pipeline_label,
                        "@stage.probability": stage.probability,
                        "@stage.is_closed": stage.is_closed,
                        "@stage.is_won": stage.is_closed and bool(stage.probability),
                    }
                )
            if owner is not None:
                values.update(
                    {
                        "@owner.name": owner.name,
                        "@owner.email": owner.email,
                        "@owner.active": owner.active,
                    }
                )
            try:
                page.opportunities.append(
                    normalize(
                        self.connection,
                        str(rec["id"]),
                        values,
                        self.mapping,
                        stage_ids=(props.get("dealstage"),),
                    )
                )
            except NormalizeError as e:
                page.set_aside.append(SetAside(str(rec["id"]), str(e), values))
        return page

    def list_ids(self) -> Iterator[str]:
        return self._list_ids(archived=False)

    def reread(self, ids: Sequence[str]) -> Iterator[Page]:
        props = self.properties()
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            request = BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in chunk], properties=props, properties_with_history=[]
            )
            body = self._call(
                "batch_read",
                lambda r=request: self._deals.batch_api.read(  # type: ignore[misc]
                    r, _preload_content=False
                ),
            )
            yield self._page(body["results"])

    # ---- writes (crmsync.connectors.hubspot_writes) --------------------------------------
    write_batch_size = writes.BATCH_LIMIT

    def write(self, kind: str, batch: Sequence[Write]) -> list[WriteResult]:
        return writes.write(self, kind, batch)

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        return writes.find_tasks(self, keys)

    def changed_since(
        self, cursor: Cursor | None, fields: Sequence[str]
    ) -> dict[str, dict[str, Any]] | None:
        return writes.changed_since(self, cursor, fields)

    def close(self) -> None:
        return None


def _body(e: Exception) -> dict[str, Any]:
    raw = getattr(e, "body", None)
    try:
        parsed = json.loads(raw) if raw else {}
    except (ValueError, TypeError):
        return {"message": str(raw)[:200]}
    return parsed if isinstance(parsed, dict) else {}


def _parse(text: str) -> datetime:
    value = convert("datetime", text, "hs_lastmodifieddate")
    assert isinstance(value, datetime)
    return value


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)
