"""HubSpot plumbing every HubSpot job shares: the client, counted and retried calls with HubSpot's
errors turned into crmsync's, the daily-quota headers, and the portal's clock.

Responses are read as raw JSON (the client's model objects cost more than the HTTP does) while
hubspot-api-client still makes every request; the reading, reference and write modules each take
a `HubSpotApi` and call through it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import hubspot
import urllib3

from crmsync.connectors.base import ApiMeter
from crmsync.connectors.network import network_failure
from crmsync.connectors.retry import Retriable, call_with_retries
from crmsync.connectors.settings import HubSpotAuth, SyncSettings
from crmsync.errors import AuthFailed, CrmApiError, QuotaStop
from crmsync.model.normalize import convert


class HubSpotApi:
    """One portal's client; every call goes through `call` (quota guard, count, retries)."""

    def __init__(
        self, connection: str, auth: HubSpotAuth, settings: SyncSettings, meter: ApiMeter
    ) -> None:
        self.connection = connection
        self.settings = settings
        self.meter = meter
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
        # every call's keywords: the raw answer (parsed here), and `timeout_seconds` for the
        # connection and for each wait on the answer (without one a stalled answer held the
        # sync, and a service's stop, for as long as the server kept quiet)
        wait = settings.timeout_seconds
        self.raw: dict[str, Any] = {"_preload_content": False, "_request_timeout": (wait, wait)}
        self.deals = Kept(self.client.crm.deals)
        self.objects = Kept(self.client.crm.objects)  # tasks and write-back batches
        self._server_time: datetime | None = None

    def call(self, what: str, fn: Callable[[], urllib3.HTTPResponse]) -> Any:
        """One API call returning parsed JSON: quota guard, counting, retries."""

        def attempt() -> Any:
            self.meter.guard(self.settings.quota_share, "hubspot", self.connection)
            self.meter.count()
            try:
                response = fn()
            except urllib3.exceptions.HTTPError as e:
                raise Retriable(network_failure(e)) from None
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
            raise Retriable(
                f"429 {message}", float(retry_after) if retry_after else None, rate_limited=True
            )
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

    def now(self) -> datetime:
        """The portal's time by the Date header of the last answer (this machine's before any)."""
        return self._server_time or datetime.now(UTC)


class Kept:
    """A client's discovery object (`client.crm.deals`) whose API objects are made once.

    hubspot-api-client makes a new ApiClient, with its own connection pool, at every access of
    `basic_api` or `search_api`: each call then opened a new TLS connection (a handshake and the
    CA file read again, a page of a thousand). Kept, the pool's connection is reused."""

    def __init__(self, discovery: Any) -> None:
        self._discovery = discovery
        self._made: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        found = self._made.get(name)
        if found is None:
            found = self._made[name] = getattr(self._discovery, name)
        return found


def next_after(body: dict[str, Any]) -> str | None:
    """The `after` token of a list answer's next page; None on the last page."""
    after = ((body.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after else None


def parse_time(text: str) -> datetime:
    """A HubSpot datetime (hs_lastmodifieddate, a cursor's window edge) as an aware datetime."""
    value = convert("datetime", text, "hs_lastmodifieddate")
    assert isinstance(value, datetime)
    return value


def iso(value: datetime) -> str:
    """A datetime as ISO 8601 in UTC, as cursors keep it."""
    return value.astimezone(UTC).isoformat()


def ms(value: datetime) -> int:
    """A datetime as epoch milliseconds, as search filters take it."""
    return int(value.timestamp() * 1000)


def _body(e: Exception) -> dict[str, Any]:
    raw = getattr(e, "body", None)
    try:
        parsed = json.loads(raw) if raw else {}
    except (ValueError, TypeError):
        return {"message": str(raw)[:200]}
    return parsed if isinstance(parsed, dict) else {}
