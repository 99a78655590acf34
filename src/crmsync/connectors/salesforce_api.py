"""Salesforce REST plumbing every Salesforce job shares: login, counted and retried calls with
Salesforce's errors turned into crmsync's, query paging, and the org's clock.

The reading, history and write modules each take a `SalesforceApi`; none of them talks HTTP
any other way, so every call is counted, retried when worth it, and checked against the quota.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
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

from crmsync.connectors.base import ApiMeter
from crmsync.connectors.network import network_failure
from crmsync.connectors.retry import Retriable, call_with_retries
from crmsync.connectors.salesforce_auth import Session, login
from crmsync.connectors.settings import SalesforceAuth, SyncSettings
from crmsync.errors import CrmApiError, QuotaStop
from crmsync.model.normalize import convert

T = TypeVar("T")
log = structlog.get_logger("crmsync.salesforce")

API_VERSION = "59.0"
MAX_BATCH = 2000  # the most records one query page may carry


class SalesforceApi:
    """One org's REST session; every call goes through `call` (quota guard, count, retries)."""

    def __init__(
        self,
        connection: str,
        auth: SalesforceAuth,
        settings: SyncSettings,
        meter: ApiMeter,
        api_version: str = API_VERSION,
    ) -> None:
        self.connection = connection
        self.auth = auth
        self.settings = settings
        self.meter = meter
        self.api_version = api_version
        self.http = requests.Session()
        if auth.ca_file is not None:
            self.http.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
            self.http.verify = str(auth.ca_file)
        self.http.hooks["response"].append(self._on_response)
        self._last_response: requests.Response | None = None
        self._sf: Salesforce | None = None

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = Salesforce.parse_api_usage(info).get("api-usage")
            if usage is not None:
                self.meter.read_quota(usage.used, usage.total)

    def login(self) -> Salesforce:
        """Run the OAuth flow (counted, retried) and hand the session to simple-salesforce."""

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
        """simple-salesforce, logged in on first use."""
        return self._sf or self.login()

    def call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """One API call: quota guard, counting, retries, and one re-login on an expired session."""
        relogged = False

        def attempt() -> T:
            nonlocal relogged
            self.meter.guard(self.settings.quota_share, "salesforce", self.connection)
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
                self.login()
                raise Retriable("session expired", retry_after=0) from None
            except SalesforceRefusedRequest as e:
                if _code(e) == "REQUEST_LIMIT_EXCEEDED" and _is_concurrency_limit(e):
                    # the same 403 and code as the daily limit, told apart by the message
                    # ("ConcurrentPerOrgLongTxn Limit exceeded"): it passes, retry later
                    raise Retriable(_message(e), self._retry_after(), rate_limited=True) from None
                if _code(e) == "REQUEST_LIMIT_EXCEEDED":
                    raise QuotaStop(
                        f"salesforce {self.connection}: daily API limit reached "
                        "(REQUEST_LIMIT_EXCEEDED); the sync resumes next run"
                    ) from None
                raise CrmApiError(f"salesforce {self.connection}: {what}: {_message(e)}") from None
            except SalesforceError as e:
                if e.status == 429 or e.status >= 500:
                    raise Retriable(
                        f"{e.status} {_message(e)}",
                        self._retry_after(),
                        rate_limited=e.status == 429,
                    ) from None
                raise CrmApiError(f"salesforce {self.connection}: {what}: {_message(e)}") from None
            except (requests.ConnectionError, requests.Timeout) as e:
                raise Retriable(network_failure(e)) from None

        return call_with_retries(
            attempt,
            retries=self.settings.max_retries,
            base_wait=self.settings.retry_base_seconds,
            what=what,
            connection=self.connection,
            crm="salesforce",
        )

    def more(self, next_url: str, headers: dict[str, str]) -> Any:
        """The next page of a query, by its nextRecordsUrl (one call)."""
        return self.call(
            "query_more",
            lambda sf: sf.query_more(next_url, identifier_is_url=True, headers=headers),
        )

    def follow(self, result: Any, headers: dict[str, str]) -> Iterator[Any]:
        """A query's first answer, then each page after it, fetched only when asked for."""
        while True:
            yield result
            if result["done"]:
                return
            result = self.more(result["nextRecordsUrl"], headers)

    def _retry_after(self) -> float | None:
        value = self._last_response.headers.get("Retry-After") if self._last_response else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def server_time(self) -> datetime | None:
        """The org's time by the Date header of the last answer (None before any)."""
        value = self._last_response.headers.get("Date") if self._last_response else None
        try:
            return parsedate_to_datetime(value).astimezone(UTC) if value else None
        except (TypeError, ValueError):
            return None

    def close(self) -> None:
        self.http.close()


def parse_stamp(text: str) -> datetime:
    """A Salesforce datetime (SystemModstamp, CreatedDate) as an aware datetime."""
    value = convert("datetime", text, "SystemModstamp")
    assert isinstance(value, datetime)
    return value


def sf_stamp(value: datetime) -> str:
    """A datetime as Salesforce writes stamps (`2026-11-20T08:15:00.000+0000`), in UTC."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def soql_datetime(value: datetime) -> str:
    """A datetime as a SOQL literal, in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _code(e: SalesforceError) -> str | None:
    content = e.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode"))
    return None


def _is_concurrency_limit(e: SalesforceError) -> bool:
    """A REQUEST_LIMIT_EXCEEDED that is a concurrency limit (ConcurrentPerOrgLongTxn,
    ConcurrentRequests), not the daily TotalRequests one: Salesforce uses one code for both."""
    content = e.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return "concurrent" in str(content[0].get("message", "")).lower()
    return False


def _message(e: SalesforceError) -> str:
    content = e.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return f"{first.get('errorCode')}: {' '.join(str(first.get('message', '')).split())}"
    return f"HTTP {e.status}"
