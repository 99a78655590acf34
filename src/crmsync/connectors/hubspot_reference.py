"""Owners and pipeline stages: the reference data that gives a deal its owner and stage facts,
the `@owner.*`, `@stage.*` and `@pipeline.*` sources a HubSpot mapping may name.

Deals carry only ids (dealstage, hubspot_owner_id); the pipelines and owners APIs say what they
mean. Both change, so they are read again once the connector's cache holds them longer than
`reference_refresh_seconds` (crmsync.connectors.cache), and at every full sync.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crmsync.connectors.cache import Kept
from crmsync.connectors.hubspot_api import HubSpotApi, next_after

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
OWNERS_LIMIT = 500


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
    teams: tuple[str, ...] = ()  # team ids, the primary team first


class Reference:
    """Stages and owners of one portal, read through the connector's cache (`kept`)."""

    def __init__(self, api: HubSpotApi, kept: Kept) -> None:
        self.api = api
        self.kept = kept
        self._stages: dict[str, StageInfo] | None = None
        self._owners: dict[str, OwnerInfo] | None = None

    def forget(self) -> None:
        """Drop what was read, so the next look-up asks the cache, then the CRM, again."""
        self._stages = self._owners = None

    def stages(self) -> dict[str, StageInfo]:
        """Every deal stage of every pipeline, by stage id (one pipelines call when not cached)."""
        if self._stages is None or not self.kept.fresh("pipelines"):
            rows = self.kept.get("pipelines")
            if rows is None:
                rows = self._read_stages()
                self.kept.put("pipelines", rows)
            self._stages = {r[0]: StageInfo(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows}
        return self._stages

    def _read_stages(self) -> list[list[Any]]:
        body = self.api.call(
            "pipelines",
            lambda: self.api.client.crm.pipelines.pipelines_api.get_all(
                object_type="deals", **self.api.raw
            ),
        )
        rows: list[list[Any]] = []
        for pipeline in body["results"]:
            for stage in pipeline["stages"]:
                meta = stage.get("metadata") or {}
                prob = meta.get("probability")
                rows.append(
                    [
                        stage["id"],
                        stage["label"],
                        pipeline["label"],
                        float(prob) if prob not in (None, "") else None,
                        str(meta.get("isClosed", "false")).lower() == "true",
                    ]
                )
        return rows

    def owners(self) -> dict[str, OwnerInfo]:
        """Every owner, live and archived, by id (one call per 500 of each when not cached)."""
        if self._owners is None or not self.kept.fresh("owners"):
            rows = self.kept.get("owners")
            if rows is None:
                rows = self._read_owners()
                self.kept.put("owners", rows)
            self._owners = {r[0]: OwnerInfo(r[1], r[2], bool(r[3]), tuple(r[4])) for r in rows}
        return self._owners

    def _read_owners(self) -> list[list[Any]]:
        rows: dict[str, list[Any]] = {}
        for archived in (False, True):
            after = None
            while True:
                body = self.api.call(
                    "owners",
                    lambda a=after, arch=archived: (  # type: ignore[misc]
                        self.api.client.crm.owners.owners_api.get_page(
                            limit=OWNERS_LIMIT, after=a, archived=arch, **self.api.raw
                        )
                    ),
                )
                for o in body["results"]:
                    name = " ".join(p for p in (o.get("firstName"), o.get("lastName")) if p)
                    rows[str(o["id"])] = [
                        str(o["id"]),
                        name or None,
                        o.get("email"),
                        not o.get("archived", False),
                        list(_teams(o.get("teams") or [])),
                    ]
                after = next_after(body)
                if not after:
                    break
        return list(rows.values())

    def deriver(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """The `@...` values of a deal, from its stage and owner ids (none that are unknown), for a
        page of deals: stages and owners read once (now), each stage's and each owner's values
        made once; each deal gets its own dict."""
        stages, owners = self.stages(), self.owners()
        by_stage: dict[Any, dict[str, Any]] = {}
        by_owner: dict[Any, dict[str, Any]] = {}

        def derived(props: dict[str, Any]) -> dict[str, Any]:
            stage_id, owner_id = props.get("dealstage"), props.get("hubspot_owner_id")
            stage = by_stage.get(stage_id)
            if stage is None:
                stage = by_stage[stage_id] = _stage_values(stages.get(stage_id or ""))
            owner = by_owner.get(owner_id)
            if owner is None:
                owner = by_owner[owner_id] = _owner_values(owners.get(owner_id or ""))
            return {**stage, **owner}

        return derived


def _stage_values(stage: StageInfo | None) -> dict[str, Any]:
    if stage is None:
        return {}
    return {
        "@stage.label": stage.label,
        "@pipeline.label": stage.pipeline_label,
        "@stage.probability": stage.probability,
        "@stage.is_closed": stage.is_closed,
        "@stage.is_won": stage.is_closed and bool(stage.probability),
    }


def _owner_values(owner: OwnerInfo | None) -> dict[str, Any]:
    if owner is None:
        return {}
    return {"@owner.name": owner.name, "@owner.email": owner.email, "@owner.active": owner.active}


def _teams(teams: list[dict[str, Any]]) -> tuple[str, ...]:
    """An owner's team ids, the primary team first (HubSpot owners have no manager field)."""
    ordered = sorted(teams, key=lambda t: not t.get("primary", False))
    return tuple(str(t["id"]) for t in ordered if t.get("id") is not None)
