"""The HubSpot connector: deals through hubspot-api-client over the CRM v3 API.

This module is the `Connector` the sync and the write-back see; the work is done by the modules
it puts together, one per job: `hubspot_api` (the client, counted and retried calls),
`hubspot_reference` (owners and pipeline stages), `hubspot_read` (list pages, search windows,
archived deals, reconcile reads), `hubspot_writes` (flags and tasks through batch endpoints) and
`hubspot_tasks` (tasks read back before crmsync changes them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from crmsync.connectors import hubspot_tasks as tasks
from crmsync.connectors import hubspot_writes as writes
from crmsync.connectors.base import ApiMeter, Page, TaskState, Write, WriteResult
from crmsync.connectors.cache import Kept
from crmsync.connectors.hubspot_api import HubSpotApi
from crmsync.connectors.hubspot_read import SEARCH_LIMIT, DealReader
from crmsync.connectors.hubspot_reference import DERIVED, OwnerInfo, Reference, StageInfo
from crmsync.connectors.settings import HubSpotAuth, SyncSettings
from crmsync.errors import InvalidInput
from crmsync.model.mapping import Mapping
from crmsync.model.owners import OwnerEntry
from crmsync.model.records import Cursor


class HubSpotConnector:
    """One HubSpot portal; `connection` is its name in crmsync's config."""

    source = "hubspot"
    write_batch_size = writes.BATCH_LIMIT

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
        self.kept = Kept(self.settings.reference_refresh_seconds)
        self.api = HubSpotApi(connection, auth, self.settings, self.meter)
        self.client = self.api.client
        self.search_limit = min(self.settings.page_size or SEARCH_LIMIT, SEARCH_LIMIT)
        self.reference = Reference(self.api, self.kept)
        self.reader = DealReader(self.api, mapping, self.reference, self.search_limit)

    # ---- reference data ---------------------------------------------------------------
    def stages(self) -> dict[str, StageInfo]:
        return self.reference.stages()

    def owners(self) -> dict[str, OwnerInfo]:
        return self.reference.owners()

    def owner_directory(self) -> list[OwnerEntry] | None:
        """Every owner, archived ones inactive, with their teams (the pull reads them anyway)."""
        if not self.settings.owner_directory:
            return None
        return [
            OwnerEntry(oid, o.name, o.email, o.active, None, o.teams)
            for oid, o in self.reference.owners().items()
        ]

    # ---- the protocol -----------------------------------------------------------------
    def load_cache(self, cached: Cursor | None) -> None:
        """Reference data the last sync kept (crmsync.connectors.cache); None: read afresh."""
        self.kept.entries = Kept.load(cached, self.settings.reference_refresh_seconds).entries
        self.reference.forget()

    def cache_cursor(self) -> Cursor | None:
        return self.kept.cursor()

    def properties(self) -> list[str]:
        return self.reader.properties()

    def check(self) -> None:
        """Confirm every mapped property exists on deals: one properties call, none while the
        cached property names are fresh and name every mapped property."""
        known = set(self.kept.get("properties") or ())
        wanted = self.mapping.crm_fields()
        if not known or any(name not in known for name in wanted):
            body = self.api.call(
                "properties",
                lambda: self.client.crm.properties.core_api.get_all(
                    object_type=self.object_name, **self.api.raw
                ),
            )
            known = {p["name"] for p in body["results"]}
            self.kept.put("properties", sorted(known))
        where = f" in {self.mapping.path}" if self.mapping.path else ""
        for name in wanted:
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
        """Changed deals since `cursor` (all of them when None), then archived deals."""
        return self.reader.pull(cursor)

    def pull_history(self, cursor: Cursor | None) -> Iterator[Page]:
        """No pages and no calls: crmsync reads no HubSpot property history, so a deal's history
        is what the store observes changing between syncs (origin "observed")."""
        return iter(())

    def list_ids(self) -> Iterator[str]:
        return self.reader.list_ids(archived=False)

    def reread(self, ids: Sequence[str]) -> Iterator[Page]:
        return self.reader.reread(ids)

    # ---- writes (crmsync.connectors.hubspot_writes) --------------------------------------
    def write(self, kind: str, batch: Sequence[Write]) -> list[WriteResult]:
        return writes.write(self.api, self.mapping, kind, batch)

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        return writes.find_tasks(self.api, self.mapping, keys)

    def read_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        """Tasks as the CRM holds them now (crmsync.connectors.hubspot_tasks)."""
        named = self.mapping.tasks.dismiss_status if self.mapping.tasks else None
        return tasks.read_tasks(self.api, task_ids, dismiss=named or tasks.DISMISS)

    def changed_since(
        self, cursor: Cursor | None, fields: Sequence[str]
    ) -> dict[str, dict[str, Any]] | None:
        return writes.changed_since(self.api, self.mapping, cursor, fields)

    def close(self) -> None:
        return None
