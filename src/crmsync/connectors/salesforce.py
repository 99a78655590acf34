"""The Salesforce connector: Opportunities through simple-salesforce over the REST API.

This module is the `Connector` the sync and the write-back see; the work is done by the modules
it puts together, one per job: `salesforce_api` (login, counted and retried calls),
`salesforce_read` (changed pages, deletions, reconcile reads), `salesforce_history`
(OpportunityHistory), `salesforce_writes` (flags and Tasks through sObject Collections) and
`salesforce_tasks` (Tasks read back before crmsync changes them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from simple_salesforce.api import Salesforce

from crmsync.connectors import salesforce_history as history
from crmsync.connectors import salesforce_read as read
from crmsync.connectors import salesforce_tasks as tasks
from crmsync.connectors import salesforce_users as users
from crmsync.connectors import salesforce_writes as writes
from crmsync.connectors.base import ApiMeter, Page, TaskState, Write, WriteResult
from crmsync.connectors.cache import Kept
from crmsync.connectors.salesforce_api import API_VERSION, MAX_BATCH, SalesforceApi
from crmsync.connectors.settings import SalesforceAuth, SyncSettings
from crmsync.errors import InvalidInput
from crmsync.model.mapping import Mapping
from crmsync.model.owners import OwnerEntry
from crmsync.model.records import Cursor


class SalesforceConnector:
    """One Salesforce org; `connection` is its name in crmsync's config."""

    source = "salesforce"
    write_batch_size = writes.COLLECTION_LIMIT

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
        self.kept = Kept(self.settings.reference_refresh_seconds)
        self.notes = read.PullNotes()  # what this sync's records pull saw (pull_history reads it)
        self.api = SalesforceApi(connection, auth, self.settings, self.meter, api_version)
        self.batch_size = min(self.settings.page_size or MAX_BATCH, MAX_BATCH)

    @property
    def sf(self) -> Salesforce:
        """simple-salesforce, logged in on first use."""
        return self.api.sf

    # ---- the protocol -----------------------------------------------------------------
    def load_cache(self, cached: Cursor | None) -> None:
        """Reference data the last sync kept (crmsync.connectors.cache); None: read afresh."""
        self.kept.entries = Kept.load(cached, self.settings.reference_refresh_seconds).entries

    def cache_cursor(self) -> Cursor | None:
        return self.kept.cursor()

    def check(self) -> None:
        """Log in and confirm every mapped field exists on the object: one describe call, none
        while the cached describe is fresh and names every mapped field."""
        cached = self.kept.get("describe")
        if cached is None or self._unknown(cached):
            described = self.api.call(
                "describe", lambda sf: getattr(sf, self.object_name).describe()
            )
            cached = {
                "fields": sorted(f["name"].lower() for f in described["fields"]),
                "relations": sorted(
                    f["relationshipName"].lower()
                    for f in described["fields"]
                    if f.get("relationshipName")
                ),
            }
            self.kept.put("describe", cached)
        known, relations = set(cached["fields"]), set(cached["relations"])
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

    def _unknown(self, cached: Any) -> bool:
        """Whether a cached describe misses a mapped field (then it is read again)."""
        try:
            known, relations = set(cached["fields"]), set(cached["relations"])
        except (KeyError, TypeError):
            return True
        for name in self.mapping.crm_fields():
            head, dot, _ = name.partition(".")
            if (head.lower() not in relations) if dot else (name.lower() not in known):
                return True
        return False

    def soql_fields(self) -> list[str]:
        return read.soql_fields(self.mapping)

    def pull(self, cursor: Cursor | None, *, started_at: datetime) -> Iterator[Page]:
        """Changes since `cursor` (everything when None), soft and hard deletes included."""
        return read.pull(self.api, self.mapping, cursor, self.batch_size, self.notes)

    def pull_history(self, cursor: Cursor | None) -> Iterator[Page]:
        """OpportunityHistory rows since `cursor`, as CRM field history.

        No call when the records pull before it in this sync found nothing its cursor did not
        already cover: an OpportunityHistory row is written with a change to its opportunity,
        which moves the opportunity's SystemModstamp, so no new row can exist. The history
        cursor stays where it is, so the next query covers the same rows. A row committed late
        (the case the overlap is for) may wait until the next change or, at the latest, until
        `reference_refresh_seconds` after the last history query.
        """
        if cursor is not None and self.notes.moved is False and self.kept.fresh("history"):
            return iter(())
        self.kept.put("history")
        return history.pull_history(self.api, cursor)

    def list_ids(self) -> Iterator[str]:
        return read.list_ids(self.api, self.object_name)

    def owner_directory(self) -> list[OwnerEntry] | None:
        """Every user with IsActive and ManagerId (one query), when the connection routes; None
        while the last one read is fresh (the store keeps it)."""
        if not self.settings.owner_directory or self.kept.fresh("users"):
            return None
        directory = users.read_users(self.api)
        self.kept.put("users")
        return directory

    def reread(self, ids: Sequence[str]) -> Iterator[Page]:
        """Full records for `ids`, 200 at a time (SOQL IN lists stay well under URL limits)."""
        return read.reread(self.api, self.mapping, ids)

    # ---- writes (crmsync.connectors.salesforce_writes) -----------------------------------
    def write(self, kind: str, batch: Sequence[Write]) -> list[WriteResult]:
        return writes.write(self.api, self.mapping, kind, batch)

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        return writes.find_tasks(self.api, self.mapping, keys)

    def read_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        """Tasks as the CRM holds them now (crmsync.connectors.salesforce_tasks)."""
        named = self.mapping.tasks.dismiss_status if self.mapping.tasks else None
        return tasks.read_tasks(self.api, task_ids, dismiss=named or tasks.DISMISS)

    def changed_since(
        self, cursor: Cursor | None, fields: Sequence[str]
    ) -> dict[str, dict[str, Any]] | None:
        return writes.changed_since(self.api, self.mapping, cursor, fields)

    def close(self) -> None:
        self.api.close()


__all__ = ["SalesforceConnector"]
