"""The output of the data generator: what both sandbox CRMs are loaded with at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmsync.sandbox.hubspot.records import Association, HsOwner, HsRecord


@dataclass
class GeneratedData:
    """Records for one Salesforce org and one HubSpot portal, in their own wire shapes."""

    # sObject name ("User", "Account", "Opportunity", "OpportunityHistory", "Task") -> records whose
    # keys are exactly the schema's field names and whose values are wire values.
    salesforce: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hubspot_owners: list[HsOwner] = field(default_factory=list)
    # "companies", "deals", "tasks" -> records
    hubspot: dict[str, list[HsRecord]] = field(default_factory=dict)
    hubspot_associations: list[Association] = field(default_factory=list)
