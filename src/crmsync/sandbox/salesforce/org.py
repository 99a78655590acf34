"""The sandbox Salesforce org: records in memory with the write semantics Salesforce applies.

Writes through the API and through the admin interface both land here. Opportunity writes keep the
derived fields (IsClosed, IsWon, ForecastCategory, ExpectedRevenue, LastStageChangeDate) and append
OpportunityHistory rows as Salesforce does. Completing a Task moves its opportunity's
LastActivityDate, and that change updates the opportunity's SystemModstamp (not LastModifiedDate),
as Salesforce's help article 000387261 says: an incremental sync by SystemModstamp sees it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from crmsync.sandbox.clock import Clock, parse_datetime, sf_datetime
from crmsync.sandbox.salesforce.ids import IdFactory, to_18
from crmsync.sandbox.salesforce.schema import SOBJECTS, SObject, sobject
from crmsync.sandbox.salesforce.values import ID_RE, STAGES, RecordError, coerce, require

_UNIQUE = {o.name: tuple(f for f in o.fields if f.unique) for o in SOBJECTS.values()}


class Org:
    """All records of one org, guarded by one lock; values are kept in wire form."""

    def __init__(self, clock: Clock, admin_user_id: str | None = None, pod: str = "8d") -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.ids = IdFactory(pod)
        self.tables: dict[str, dict[str, dict[str, Any]]] = {o.name: {} for o in SOBJECTS.values()}
        # (sObject, id, deletedDate) for every delete, soft or hard: the getDeleted resource
        self.deleted_log: list[tuple[str, str, str]] = []
        self.history_by_opportunity: dict[str, list[str]] = {}
        self.api_user_id = admin_user_id
        self.unique_index: dict[tuple[str, str], dict[str, str]] = {}

    # ---- bulk load (generator) -------------------------------------------------------------
    def load(self, name: str, records: Iterable[dict[str, Any]]) -> None:
        """Add fully formed records (as the generator makes them) without applying write rules."""
        obj = require(name)
        table = self.tables[obj.name]
        with self.lock:
            for rec in records:
                table[rec["Id"]] = rec
                self._index_unique(obj, rec, None)
                if obj.name == "OpportunityHistory":
                    self.history_by_opportunity.setdefault(rec["OpportunityId"], []).append(
                        rec["Id"]
                    )
            self.ids.reserve(obj.key_prefix, len(table))
            if self.api_user_id is None and obj.name == "User" and table:
                self.api_user_id = next(iter(table))

    # ---- reads -----------------------------------------------------------------------------
    def get(self, name: str, record_id: str) -> dict[str, Any] | None:
        """The record, deleted or not, by 15- or 18-character id; None if unknown or purged."""
        obj = sobject(name)
        if obj is None or not ID_RE.match(record_id):
            return None
        return self.tables[obj.name].get(to_18(record_id))

    def resolve(self, name: str, record_id: str) -> dict[str, Any] | None:
        """Look-up used by SOQL for relationship fields."""
        return self.get(name, record_id)

    def find_by_id(self, record_id: str) -> tuple[SObject, dict[str, Any]] | None:
        """The record with this id in whichever table its key prefix points to."""
        if not ID_RE.match(record_id):
            return None
        for obj in SOBJECTS.values():
            if record_id.startswith(obj.key_prefix):
                rec = self.tables[obj.name].get(to_18(record_id))
                return (obj, rec) if rec is not None else None
        return None

    # ---- writes ----------------------------------------------------------------------------
    def create(self, name: str, values: dict[str, Any], *, system: bool = False) -> str:
        """Insert a record as the API would; `system` lets the admin set read-only fields."""
        obj = require(name)
        with self.lock:
            now = self.clock.now()
            clean = coerce(obj, values, creating=True, system=system, find=self.find_by_id)
            rec: dict[str, Any] = {f.name: None for f in obj.fields}
            rec.update(_defaults(obj))
            rec.update(
                {
                    f.name: False
                    for f in obj.fields
                    if f.type == "boolean" and f.createable and rec.get(f.name) is None
                }
            )  # checkboxes start false
            rec.update(clean)
            rec["Id"] = self.ids.next(obj.key_prefix)
            rec["IsDeleted"] = False
            stamp = sf_datetime(now)
            for key in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
                if key in obj.by_name and not (system and values.get(key)):
                    rec[key] = stamp
            for key in ("CreatedById", "LastModifiedById", "OwnerId"):
                if key in obj.by_name and rec.get(key) is None:
                    rec[key] = self.api_user_id  # Salesforce: the creating user owns by default
            missing = [
                f.name
                for f in obj.fields
                if f.createable and not f.nillable and rec.get(f.name) is None
            ]
            if missing:
                raise RecordError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    tuple(missing),
                )
            if obj.name == "Opportunity":
                self._derive_opportunity(rec, None, values, stamp)
            elif obj.name == "User":
                rec["Name"] = " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p)
            elif obj.name == "Task":
                self._derive_task(rec, None)
            self._check_unique(obj, rec)
            self.tables[obj.name][rec["Id"]] = rec
            self._index_unique(obj, rec, None)
            if obj.name == "Opportunity":
                self._append_history(rec, None, stamp)
            return str(rec["Id"])

    def update(
        self,
        name: str,
        record_id: str,
        values: dict[str, Any],
        *,
        system: bool = False,
        unmodified_since: datetime | None = None,
    ) -> dict[str, Any]:
        """Update a record as the API would; returns the new record. Raises RecordError."""
        obj = require(name)
        with self.lock:
            rec = self._existing(obj, record_id)
            if unmodified_since is not None:
                last = parse_datetime(rec["LastModifiedDate"])
                if last.replace(microsecond=0) > unmodified_since.replace(microsecond=0):
                    raise RecordError(
                        "PRECONDITION_FAILED", "The requested entity has been modified."
                    )
            clean = coerce(obj, values, creating=False, system=system, find=self.find_by_id)
            self._check_unique(obj, {**rec, **clean})
            before = dict(rec)
            rec.update(clean)
            stamp = sf_datetime(self.clock.now())
            if not (system and "LastModifiedDate" in values):
                rec["LastModifiedDate"] = stamp
            if not (system and "SystemModstamp" in values):
                rec["SystemModstamp"] = stamp
            if "LastModifiedById" in obj.by_name and not system:
                rec["LastModifiedById"] = self.api_user_id
            if obj.name == "Opportunity":
                self._derive_opportunity(rec, before, values, rec["LastModifiedDate"])
                self._append_history(rec, before, rec["LastModifiedDate"])
            elif obj.name == "User":
                rec["Name"] = " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p)
            elif obj.name == "Task":
                self._derive_task(rec, before)
            self._index_unique(obj, rec, before)
            return rec

    def delete(self, name: str, record_id: str, *, hard: bool = False) -> None:
        """Soft delete (to the recycle bin: queryAll still sees it) or hard delete (purged)."""
        obj = require(name)
        with self.lock:
            table = self.tables[obj.name]
            rid = to_18(record_id)
            rec = table.get(rid)
            if rec is None:
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
            stamp = sf_datetime(self.clock.now())
            if not rec["IsDeleted"]:
                self.deleted_log.append((obj.name, rid, stamp))
            if hard:
                del table[rid]
            else:
                if rec["IsDeleted"]:
                    raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
                rec["IsDeleted"] = True
                rec["SystemModstamp"] = stamp

    def undelete(self, name: str, record_id: str) -> None:
        """Restore a soft-deleted record from the recycle bin."""
        obj = require(name)
        with self.lock:
            rec = self.tables[obj.name].get(to_18(record_id))
            if rec is None or not rec["IsDeleted"]:
                raise RecordError("UNDELETE_FAILED", "Entity is not in the recycle bin")
            rec["IsDeleted"] = False
            rec["SystemModstamp"] = sf_datetime(self.clock.now())

    def check_values(self, name: str, values: dict[str, Any], *, creating: bool) -> None:
        """Raise the RecordError a write of `values` would meet, without writing anything."""
        obj = require(name)
        clean = coerce(obj, values, creating=creating, system=False, find=self.find_by_id)
        self._check_unique(obj, clean)

    # ---- internals ---------------------------------------------------------------------
    def _existing(self, obj: SObject, record_id: str) -> dict[str, Any]:
        if not ID_RE.match(record_id or "") or not record_id.startswith(obj.key_prefix):
            raise RecordError(
                "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}", ("Id",)
            )
        rec = self.tables[obj.name].get(to_18(record_id))
        if rec is None or rec["IsDeleted"]:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
        return rec

    def _check_unique(self, obj: SObject, candidate: dict[str, Any]) -> None:
        """Refuse a write that would duplicate a unique field (e.g. Task.CRMSync_Key__c)."""
        for f in _UNIQUE[obj.name]:
            value = candidate.get(f.name)
            if value is not None:
                owner = self.unique_index.get((obj.name, f.name), {}).get(str(value).lower())
                if owner is not None and owner != candidate.get("Id"):
                    raise RecordError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: "
                        f"{owner}",
                        (f.name,),
                    )

    def _index_unique(
        self, obj: SObject, rec: dict[str, Any], before: dict[str, Any] | None
    ) -> None:
        for f in _UNIQUE[obj.name]:
            index = self.unique_index.setdefault((obj.name, f.name), {})
            if before is not None and before.get(f.name) is not None:
                index.pop(str(before[f.name]).lower(), None)
            if rec.get(f.name) is not None:
                index[str(rec[f.name]).lower()] = rec["Id"]

    def _derive_opportunity(
        self, rec: dict[str, Any], before: dict[str, Any] | None, values: dict[str, Any], stamp: str
    ) -> None:
        stage = STAGES[rec["StageName"]]
        stage_changed = before is None or before["StageName"] != rec["StageName"]
        if stage_changed:
            if "Probability" not in values:
                rec["Probability"] = float(stage[1])
            if "ForecastCategoryName" not in values:
                rec["ForecastCategoryName"] = stage[2]
            rec["LastStageChangeDate"] = stamp
        rec["ForecastCategory"] = rec.get("ForecastCategoryName") or stage[2]
        rec["IsClosed"] = stage[3]
        rec["IsWon"] = stage[4]
        amount, prob = rec.get("Amount"), rec.get("Probability")
        rec["ExpectedRevenue"] = (
            None if amount is None or prob is None else round(amount * prob / 100, 2)
        )
        for key in ("HasOpenActivity", "HasOverdueTask", "Budget_Confirmed__c", "Needs_Review__c"):
            if rec.get(key) is None:
                rec[key] = False

    def _append_history(
        self, rec: dict[str, Any], before: dict[str, Any] | None, stamp: str
    ) -> None:
        tracked = ("StageName", "Amount", "CloseDate", "Probability", "ForecastCategory")
        if before is not None and all(before.get(k) == rec.get(k) for k in tracked):
            return
        hid = self.ids.next("008")
        row = {
            "Id": hid,
            "IsDeleted": False,
            "OpportunityId": rec["Id"],
            "StageName": rec["StageName"],
            "Amount": rec["Amount"],
            "PrevAmount": before["Amount"] if before else None,
            "ExpectedRevenue": rec["ExpectedRevenue"],
            "CloseDate": rec["CloseDate"],
            "PrevCloseDate": before["CloseDate"] if before else None,
            "Probability": rec["Probability"],
            "ForecastCategory": rec["ForecastCategory"],
            "CreatedById": rec.get("LastModifiedById"),
            "CreatedDate": stamp,
            "SystemModstamp": stamp,
        }
        self.tables["OpportunityHistory"][hid] = row
        self.history_by_opportunity.setdefault(rec["Id"], []).append(hid)

    def _derive_task(self, rec: dict[str, Any], before: dict[str, Any] | None) -> None:
        rec["IsClosed"] = rec.get("Status") == "Completed"
        rec["IsHighPriority"] = rec.get("Priority") == "High"
        rec["IsReminderSet"] = bool(rec.get("IsReminderSet"))
        just_closed = rec["IsClosed"] and (before is None or not before.get("IsClosed"))
        what = rec.get("WhatId")
        if just_closed and what and what.startswith("006"):
            opp = self.tables["Opportunity"].get(what)
            if opp is not None:
                day = rec.get("ActivityDate") or self.clock.now().date().isoformat()
                if opp.get("LastActivityDate") is None or opp["LastActivityDate"] < day:
                    opp["LastActivityDate"] = day
                    # a LastActivityDate change updates SystemModstamp (Salesforce help
                    # 000387261); LastModifiedDate stays, as no user edited the opportunity
                    opp["SystemModstamp"] = sf_datetime(self.clock.now())


def _defaults(obj: SObject) -> dict[str, Any]:
    if obj.name == "Task":
        return {"Status": "Not Started", "Priority": "Normal", "IsReminderSet": False}
    if obj.name == "User":
        return {"IsActive": True}
    return {}
