"""The sandbox HubSpot portal: objects, owners and associations in memory, with HubSpot's rules.

Search sees writes only after `search_delay` seconds (HubSpot's search index lags writes by a few
seconds: "New writes take a few seconds to become searchable", HubSpot CRM search docs), so a
client that searches right after writing must cope, as it must in production. The lag is on by
default (`SEARCH_DELAY`); 0 turns it off where a test needs search to see writes at once.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crmsync.sandbox.clock import Clock, from_epoch_ms, hs_datetime, parse_datetime
from crmsync.sandbox.hubspot.records import Association, HsOwner, HsRecord
from crmsync.sandbox.hubspot.schema import ASSOCIATION_TYPES, PROPERTIES, STAGES, Property

SEARCH_DELAY = 2.0  # seconds of the sandbox clock; HubSpot's index lags writes by a few seconds
_FIRST_IDS = {"companies": 10_001, "deals": 1_000_001, "tasks": 50_000_001}


@dataclass
class PortalError(Exception):
    """A per-object failure in HubSpot's vocabulary (category and message)."""

    category: str
    message: str
    status: int = 400
    object_id: str | None = None


class Portal:
    """All objects of one HubSpot portal, guarded by one lock."""

    def __init__(
        self, clock: Clock, search_delay: float = SEARCH_DELAY, strict_batches: bool = True
    ) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.search_delay = search_delay
        # HubSpot's whole-batch refusals (batch.py); False only for tests of per-record paths
        self.strict_batches = strict_batches
        self.objects: dict[str, dict[int, HsRecord]] = {t: {} for t in PROPERTIES}
        self.owners: dict[str, HsOwner] = {}
        # (from type, from id, to type) -> {to id: [association type ids]}
        self.associations: dict[tuple[str, int, str], dict[int, list[int]]] = {}
        self._next_id = dict(_FIRST_IDS)
        # (type, id) -> (visible to search from, what search sees until then: None = nothing)
        self._unindexed: dict[tuple[str, int], tuple[datetime, HsRecord | None]] = {}
        # (type, unique property) -> {value: object id}: hasUniqueValue properties
        self._unique: dict[tuple[str, str], dict[str, int]] = {
            (t, p.name): {} for t, props in PROPERTIES.items() for p in props.values() if p.unique
        }

    # ---- bulk load (generator) -------------------------------------------------------
    def load(self, object_type: str, records: Iterable[HsRecord]) -> None:
        with self.lock:
            table = self.objects[object_type]
            top = self._next_id[object_type] - 1
            for rec in records:
                table[rec.id] = rec
                top = max(top, rec.id)
                self._index_unique(object_type, rec.id, {}, rec.properties)
            self._next_id[object_type] = top + 1

    def load_owners(self, owners: Iterable[HsOwner]) -> None:
        with self.lock:
            for owner in owners:
                self.owners[owner.id] = owner

    def load_associations(self, links: Iterable[Association]) -> None:
        with self.lock:
            for link in links:
                self.associate(link.from_type, link.from_id, link.to_type, link.to_id)

    # ---- associations ----------------------------------------------------------------
    def associate(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int | None = None
    ) -> None:
        """Link two objects in both directions (HubSpot associations are two-way)."""
        forward = type_id or ASSOCIATION_TYPES.get((from_type, to_type), 0)
        backward = ASSOCIATION_TYPES.get((to_type, from_type), 0)
        with self.lock:
            fwd = self.associations.setdefault((from_type, from_id, to_type), {})
            if forward not in fwd.setdefault(to_id, []):
                fwd[to_id].append(forward)
            back = self.associations.setdefault((to_type, to_id, from_type), {})
            if backward not in back.setdefault(from_id, []):
                back[from_id].append(backward)

    def associated(self, from_type: str, from_id: int, to_type: str) -> dict[int, list[int]]:
        with self.lock:
            return dict(self.associations.get((from_type, from_id, to_type), {}))

    # ---- reads -----------------------------------------------------------------------
    def get(self, object_type: str, object_id: int, *, archived: bool = False) -> HsRecord | None:
        rec = self.objects[object_type].get(object_id)
        if rec is None or rec.archived != archived:
            return None
        return rec

    def find_unique(self, object_type: str, name: str, value: str) -> HsRecord | None:
        """The live object whose unique property `name` holds `value` (batch read by idProperty)."""
        index = self._unique.get((object_type, name))
        if index is None:
            raise PortalError("VALIDATION_ERROR", f'Property "{name}" is not a unique property')
        with self.lock:
            oid = index.get(value)
            return None if oid is None else self.get(object_type, oid)

    def searchable(self, object_type: str) -> list[HsRecord]:
        """What the search index holds now: writes newer than the indexing delay are not there."""
        now = self.clock.now()
        with self.lock:
            pending = {
                oid: snap
                for (t, oid), (when, snap) in list(self._unindexed.items())
                if t == object_type and when > now
            }
            for key, (when, _) in list(self._unindexed.items()):
                if when <= now:
                    del self._unindexed[key]
            out: list[HsRecord] = []
            for oid, rec in self.objects[object_type].items():
                if oid in pending:
                    snap = pending[oid]
                    if snap is not None and not snap.archived:
                        out.append(snap)
                elif not rec.archived:
                    out.append(rec)
            return out

    # ---- writes ----------------------------------------------------------------------
    def create(self, object_type: str, properties: dict[str, Any]) -> HsRecord:
        with self.lock:
            now = self.clock.now()
            clean = self.coerce(object_type, properties, creating=True)
            self._check_unique(object_type, None, clean)
            oid = self._next_id[object_type]
            self._next_id[object_type] = oid + 1
            props: dict[str, str | None] = {name: None for name in PROPERTIES[object_type]}
            props.update(clean)
            stamp = hs_datetime(now)
            props.update(
                {"hs_object_id": str(oid), "createdate": stamp, "hs_lastmodifieddate": stamp}
            )
            rec = HsRecord(oid, props, now, now)
            _derive(object_type, rec, None, now)
            for name, value in clean.items():
                if PROPERTIES[object_type][name].history and value is not None:
                    rec.history[name] = [(value, now)]
            self._note_write(object_type, oid, None)
            self.objects[object_type][oid] = rec
            self._index_unique(object_type, oid, {}, rec.properties)
            return rec

    def update(
        self,
        object_type: str,
        object_id: int,
        properties: dict[str, Any],
        *,
        system: bool = False,
        at: datetime | None = None,
    ) -> HsRecord:
        with self.lock:
            rec = self.get(object_type, object_id)
            if rec is None:
                raise PortalError(
                    "OBJECT_NOT_FOUND",
                    "Object not found.  objectId are usually numeric.",
                    404,
                    str(object_id),
                )
            clean = self.coerce(object_type, properties, creating=False, system=system)
            self._check_unique(object_type, object_id, clean)
            now = at or self.clock.now()
            self._note_write(object_type, object_id, _copy(rec))
            before = dict(rec.properties)
            rec.properties.update(clean)
            self._index_unique(object_type, object_id, before, rec.properties)
            for name, value in clean.items():
                if PROPERTIES[object_type][name].history and before.get(name) != value:
                    rec.history.setdefault(name, []).append((value, now))
            if not (system and "hs_lastmodifieddate" in clean):
                rec.properties["hs_lastmodifieddate"] = hs_datetime(now)
            rec.updated_at = parse_datetime(str(rec.properties["hs_lastmodifieddate"]))
            _derive(object_type, rec, before, now)
            return rec

    def archive(self, object_type: str, object_id: int, *, hard: bool = False) -> None:
        """Archive (HubSpot's soft delete, listed with archived=true) or remove for good."""
        with self.lock:
            rec = self.objects[object_type].get(object_id)
            if rec is None:
                return
            self._note_write(object_type, object_id, _copy(rec))
            if hard:
                del self.objects[object_type][object_id]
                self._index_unique(object_type, object_id, rec.properties, {})
                return
            now = self.clock.now()
            rec.archived = True
            rec.archived_at = now
            rec.updated_at = now

    def restore(self, object_type: str, object_id: int) -> None:
        with self.lock:
            rec = self.objects[object_type].get(object_id)
            if rec is None or not rec.archived:
                raise PortalError("OBJECT_NOT_FOUND", "Object not found", 404, str(object_id))
            self._note_write(object_type, object_id, _copy(rec))
            rec.archived = False
            rec.archived_at = None
            now = self.clock.now()
            rec.updated_at = now
            rec.properties["hs_lastmodifieddate"] = hs_datetime(now)

    def first_conflict(self, object_type: str, inputs: list[dict[str, Any]]) -> PortalError | None:
        """The first unique value of a batch create already held by an object or an earlier
        input (HubSpot fails such a batch whole, naming only this first conflict)."""
        taken: dict[tuple[str, str], str] = {}
        with self.lock:
            for props in inputs:
                for (t, name), index in self._unique.items():
                    value = props.get(name)
                    if t != object_type or value is None:
                        continue
                    holder = index.get(str(value)) or taken.get((name, str(value)))
                    if holder is not None:
                        return _conflict(object_type, name, value, holder)
                    taken[(name, str(value))] = "(created in this batch)"
        return None

    def _check_unique(
        self, object_type: str, object_id: int | None, values: dict[str, Any]
    ) -> None:
        for (t, name), index in self._unique.items():
            value = values.get(name)
            if t != object_type or value is None:
                continue
            holder = index.get(str(value))
            if holder is not None and holder != object_id:
                raise _conflict(object_type, name, value, holder)

    def _index_unique(
        self, object_type: str, object_id: int, before: dict[str, Any], after: dict[str, Any]
    ) -> None:
        for (t, name), index in self._unique.items():
            if t != object_type or before.get(name) == after.get(name):
                continue
            if before.get(name) is not None:
                index.pop(str(before[name]), None)
            if after.get(name) is not None:
                index[str(after[name])] = object_id

    def _note_write(self, object_type: str, object_id: int, before: HsRecord | None) -> None:
        if self.search_delay <= 0:
            return
        key = (object_type, object_id)
        visible = self.clock.now() + timedelta(seconds=self.search_delay)
        previous = self._unindexed.get(key)
        if previous is not None and previous[0] > self.clock.now():
            before = previous[1]  # the index still shows the older version
        self._unindexed[key] = (visible, before)

    def coerce(
        self, object_type: str, properties: dict[str, Any], *, creating: bool, system: bool = False
    ) -> dict[str, str | None]:
        """`properties` as stored (wire strings), or the PortalError HubSpot answers for them."""
        defs = PROPERTIES[object_type]
        out: dict[str, str | None] = {}
        errors = []
        for name, value in properties.items():
            p = defs.get(name)
            if p is None:
                errors.append(f'Property "{name}" does not exist')
                continue
            if p.read_only and not system:
                errors.append(f'Property "{name}" is read-only')
                continue
            try:
                out[name] = _coerce_value(p, value)
            except ValueError as e:
                errors.append(str(e))
        if object_type == "tasks" and creating and not out.get("hs_timestamp"):
            errors.append('Property "hs_timestamp" is required')
        if object_type == "deals" and out.get("dealstage") and out["dealstage"] not in STAGES:
            errors.append(
                f"{out['dealstage']} was not one of the allowed options: [{', '.join(STAGES)}]"
            )
        if errors:
            raise PortalError("VALIDATION_ERROR", "; ".join(errors))
        return out


def _coerce_value(p: Property, value: Any) -> str | None:
    if value is None or value == "":
        return None if value is None else ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if p.type == "number":
        try:
            finite = math.isfinite(float(text))  # JSON never carries Infinity or NaN
        except ValueError:
            finite = False
        if not finite:
            raise ValueError(
                f'Property values were not valid: {p.name}: "{text}" is not a valid number'
            )
    elif p.type == "bool" and text not in ("true", "false"):
        raise ValueError(f'Property values were not valid: {p.name}: "{text}" is not a boolean')
    elif p.type in ("datetime", "date"):
        text = _datetime_text(p, text)
    return text


def _datetime_text(p: Property, text: str) -> str:
    """HubSpot accepts epoch milliseconds or ISO 8601 for datetime properties."""
    try:
        if text.lstrip("-").isdigit():
            return hs_datetime(from_epoch_ms(int(text)))
        return hs_datetime(parse_datetime(text))
    except (ValueError, OverflowError):
        raise ValueError(
            f'Property values were not valid: {p.name}: "{text}" is not a valid datetime'
        ) from None


def _derive(
    object_type: str, rec: HsRecord, before: dict[str, str | None] | None, now: datetime
) -> None:
    props = rec.properties
    if object_type == "deals":
        stage = STAGES.get(props.get("dealstage") or "")
        if stage is not None:
            props["hs_is_closed"] = "true" if stage.is_closed else "false"
            props["hs_is_closed_won"] = (
                "true" if stage.is_closed and stage.probability > 0 else "false"
            )
            props["hs_deal_stage_probability"] = _num(stage.probability)
    elif object_type == "tasks":
        done = props.get("hs_task_status") == "COMPLETED"
        was = before is not None and before.get("hs_task_status") == "COMPLETED"
        if props.get("hs_task_status") is None:
            props["hs_task_status"] = "NOT_STARTED"
        if done and not was:
            props["hs_task_completion_date"] = hs_datetime(now)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _copy(rec: HsRecord) -> HsRecord:
    return HsRecord(
        rec.id,
        dict(rec.properties),
        rec.created_at,
        rec.updated_at,
        rec.archived,
        rec.archived_at,
        {k: list(v) for k, v in rec.history.items()},
    )


def _conflict(object_type: str, name: str, value: Any, holder: object) -> PortalError:
    return PortalError(
        "CONFLICT",
        f"{object_type[:-1].capitalize()} already exists with {name}={value}. "
        f"Existing ID: {holder}",
        409,
        str(holder),
    )
