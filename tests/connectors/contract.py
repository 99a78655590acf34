"""One CRM of a sandbox as the connector contract suite sees it: how to build its connector, how
to change its records behind the connector's back, and what the CRM holds, in one vocabulary.

Each method answers from the sandbox's own tables (never through a connector), so the suite
compares what a connector says with what the CRM really holds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from crmsync.config import load_mapping
from crmsync.connectors.base import Connector
from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.connectors.salesforce import SalesforceConnector
from crmsync.model import Opportunity
from crmsync.model.mapping import CustomSource, Mapping, TaskFields
from crmsync.sandbox import Sandbox
from crmsync.sandbox.hubspot.schema import STAGES as HUBSPOT_STAGES
from tests.crm import ROOT
from tests.crm import connector as make_connector

# Native stage values a test moves a deal to (an open stage the generated data rarely holds).
NEW_STAGE = {"salesforce": "Negotiation/Review", "hubspot": "contractsent"}
# The sandbox's endpoint names (its call log and its fault rules use them).
ENDPOINTS = {
    "salesforce": {
        "list": "query",
        "find_tasks": "query",
        "flag.write": "collections_update",
        "task.create": "collections_create",
        "task.update": "collections_update",
    },
    "hubspot": {
        "list": "deals.list",
        "find_tasks": "tasks.batch.read",
        "flag.write": "deals.batch.update",
        "task.create": "tasks.batch.create",
        "task.update": "tasks.batch.update",
    },
}
# The CRM's per-record codes for the sandbox's record_error codes.
RECORD_CODES = {
    "salesforce": {
        "validation": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "row_lock": "UNABLE_TO_LOCK_ROW",
    },
    "hubspot": {"validation": "VALIDATION_ERROR", "row_lock": "CONFLICT"},
}


@dataclass
class Crm:
    """One CRM of a running sandbox: `name` is "salesforce" or "hubspot"."""

    name: str
    sb: Sandbox

    @property
    def side(self) -> Any:
        return self.sb.salesforce if self.name == "salesforce" else self.sb.hubspot

    @property
    def login_calls(self) -> int:
        """Calls a new connector spends before its first API call (Salesforce logs in)."""
        return 1 if self.name == "salesforce" else 0

    def endpoint(self, job: str) -> str:
        return ENDPOINTS[self.name][job]

    def record_code(self, code: str) -> str:
        return RECORD_CODES[self.name][code]

    # ---- connectors ---------------------------------------------------------------------
    def connector(self, **settings: Any) -> Connector:
        """A connector to this CRM with fast retries (settings as SyncSettings takes them)."""
        return make_connector(self.sb, self.name, **settings)

    def connector_with(
        self, *, mapping: Mapping | None = None, bad_credentials: bool = False, **settings: Any
    ) -> Connector:
        """A connector with another mapping, or with credentials the CRM refuses."""
        base = make_connector(self.sb, self.name, **settings)
        mapping = mapping or base.mapping
        if isinstance(base, SalesforceConnector):
            auth = replace(base.auth, client_secret="wrong") if bad_credentials else base.auth
            return SalesforceConnector(base.connection, auth, mapping, base.settings)
        hs_auth = replace(base.auth, access_token="pat-wrong") if bad_credentials else base.auth
        return HubSpotConnector(base.connection, hs_auth, mapping, base.settings)

    @property
    def missing_field(self) -> str:
        """A field name this CRM does not have."""
        return "No_Such_Field__c" if self.name == "salesforce" else "no_such_property"

    @property
    def refusal(self) -> str:
        """How the connector's AuthFailed message starts when the CRM refuses the credentials."""
        if self.name == "salesforce":
            return "salesforce login refused (client_credentials)"
        return "hubspot hs: INVALID_AUTHENTICATION"

    def mapping_with_missing_field(self) -> Mapping:
        """The shipped mapping with its `flags` custom field pointed at a field the CRM lacks."""
        mapping = self.mapping()
        missing = CustomSource(field=self.missing_field)
        return mapping.model_copy(update={"custom": {**mapping.custom, "flags": missing}})

    def mapping_with_missing_task_key(self) -> Mapping:
        """The shipped mapping with tasks keyed by a field the CRM lacks."""
        mapping = self.mapping()
        key = "No_Such_Key__c" if self.name == "salesforce" else "no_such_key"
        return mapping.model_copy(update={"tasks": TaskFields(key_field=key)})

    def mapping(self) -> Mapping:
        """The shipped mapping file of this CRM."""
        return load_mapping(ROOT / "connectors" / f"{self.name}.yaml")

    # ---- what the CRM holds ---------------------------------------------------------------
    def live_ids(self) -> list[str]:
        """Ids of the records not deleted, in the CRM's order."""
        if self.name == "salesforce":
            return [
                r["Id"]
                for r in self.sb.salesforce.org.tables["Opportunity"].values()
                if not r["IsDeleted"]
            ]
        return [
            str(r.id) for r in self.sb.hubspot.portal.objects["deals"].values() if not r.archived
        ]

    def expected(self) -> dict[str, dict[str, Any]]:
        """Every live record in the comparable form of `comparable`, from the CRM's tables."""
        stages = self.mapping().stages
        out: dict[str, dict[str, Any]] = {}
        if self.name == "salesforce":
            for r in self.sb.salesforce.org.tables["Opportunity"].values():
                if not r["IsDeleted"]:
                    out[r["Id"]] = {
                        "name": r["Name"],
                        "stage": r["StageName"],
                        "stage_canonical": stages.get(r["StageName"]),
                        "owner_id": r["OwnerId"],
                        "amount": _decimal(r["Amount"]),
                        "close_date": r["CloseDate"],
                        "next_step": (r["NextStep"] or "").strip() or None,
                    }
            return out
        labels = {sid: stage.label for sid, stage in HUBSPOT_STAGES.items()}
        for d in self.sb.hubspot.portal.objects["deals"].values():
            if not d.archived:
                p = d.properties
                out[str(d.id)] = {
                    "name": p["dealname"],
                    "stage": labels[str(p["dealstage"])],
                    "stage_canonical": stages.get(p["dealstage"] or ""),
                    "owner_id": p["hubspot_owner_id"] or None,
                    "amount": _decimal(p["amount"]),
                    "close_date": (p["closedate"] or "")[:10] or None,
                    "next_step": (p["hs_next_step"] or "").strip() or None,
                }
        return out

    def stage_history(self) -> dict[str, list[str]]:
        """Each record's stages as the CRM's own history keeps them (repeats collapsed), by key.

        Salesforce: OpportunityHistory. HubSpot: none that crmsync reads (it pulls no property
        history; the store observes changes instead)."""
        if self.name == "hubspot":
            return {}
        org = self.sb.salesforce.org
        out: dict[str, list[str]] = {}
        for opp_id, rows in org.history_by_opportunity.items():
            stages = [org.tables["OpportunityHistory"][h]["StageName"] for h in rows]
            out[f"sf:{opp_id}"] = [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]]
        return out

    def flag(self, rid: str) -> str | None:
        """The record's crmsync flags field as the CRM holds it."""
        if self.name == "salesforce":
            value = self.sb.salesforce.org.tables["Opportunity"][rid]["CRMSync_Flags__c"]
        else:
            value = self.sb.hubspot.portal.objects["deals"][int(rid)].properties["crmsync_flags"]
        return None if value is None else str(value)

    def task(self, crm_id: str) -> dict[str, Any]:
        """A task as the CRM holds it: its deal, key, subject, due date, whether done, note."""
        if self.name == "salesforce":
            t = self.sb.salesforce.org.get("Task", crm_id)
            assert t is not None, crm_id
            return {
                "deal": t["WhatId"],
                "key": t["CRMSync_Key__c"],
                "subject": t["Subject"],
                "due": str(t["ActivityDate"]),
                "done": t["Status"] == "Completed",
                "note": t["CRMSync_Note__c"],
            }
        portal = self.sb.hubspot.portal
        rec = portal.objects["tasks"][int(crm_id)]
        p = rec.properties
        deals = list(portal.associated("tasks", rec.id, "deals"))
        return {
            "deal": str(deals[0]) if len(deals) == 1 else deals,
            "key": p["crmsync_key"],
            "subject": p["hs_task_subject"],
            "due": str(p["hs_timestamp"])[:10],
            "done": p["hs_task_status"] == "COMPLETED",
            "note": p["crmsync_note"],
        }

    # ---- changes behind the connector's back ------------------------------------------
    def advance(self, seconds: float) -> None:
        self.sb.clock.advance(timedelta(seconds=seconds))

    def edit(self, rid: str, *, next_step: str | None = None, flags: str | None = None) -> None:
        """Change a record as a CRM user would (its modification stamp moves)."""
        if self.name == "salesforce":
            values = {"NextStep": next_step, "CRMSync_Flags__c": flags}
            self.sb.salesforce.org.update(
                "Opportunity", rid, {k: v for k, v in values.items() if v is not None}
            )
        else:
            props = {"hs_next_step": next_step, "crmsync_flags": flags}
            self.sb.hubspot.portal.update(
                "deals", int(rid), {k: v for k, v in props.items() if v is not None}
            )

    def move_stage(self, rid: str) -> None:
        """Move a record to NEW_STAGE as a CRM user would."""
        if self.name == "salesforce":
            self.sb.salesforce.org.update("Opportunity", rid, {"StageName": NEW_STAGE[self.name]})
        else:
            self.sb.hubspot.portal.update("deals", int(rid), {"dealstage": NEW_STAGE[self.name]})

    def delete(self, rid: str, *, hard: bool = False) -> None:
        """Delete a record: to the recycle bin / archive, or for good."""
        if self.name == "salesforce":
            self.sb.salesforce.org.delete("Opportunity", rid, hard=hard)
        else:
            self.sb.hubspot.portal.archive("deals", int(rid), hard=hard)

    @property
    def pull_sees_hard_deletes(self) -> bool:
        """Salesforce's getDeleted reports purged records; HubSpot forgets them (reconcile only)."""
        return self.name == "salesforce"


def comparable(opp: Opportunity) -> dict[str, Any]:
    """An opportunity in the form `Crm.expected` gives the CRM's records."""
    return {
        "name": opp.name,
        "stage": opp.stage,
        "stage_canonical": opp.stage_canonical,
        "owner_id": opp.owner_id,
        "amount": opp.amount,
        "close_date": opp.close_date.isoformat() if isinstance(opp.close_date, date) else None,
        "next_step": opp.next_step,
    }


def _decimal(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))
