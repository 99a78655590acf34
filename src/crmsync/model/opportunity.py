"""The normalized Opportunity, whichever CRM it came from.

Connectors turn a Salesforce Opportunity or a HubSpot deal into this shape (through the mapping
files), the store keeps it, and workflow rules see nothing else. `FIELDS` describes every field
once: its type, whether a mapping may feed it, and whether its changes are kept as history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

CANONICAL_STAGES = (
    "qualified",
    "discovery",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)


@dataclass(frozen=True)
class FieldSpec:
    """One normalized field: its value type, and whether a mapping file may feed it."""

    name: str
    type: str  # str, bool, decimal, float, date, datetime
    mappable: bool = True
    tracked: bool = False  # changes kept in the store's field history
    description: str = ""


FIELDS: dict[str, FieldSpec] = {
    f.name: f
    for f in (
        FieldSpec("name", "str", description="Opportunity or deal name"),
        FieldSpec("account_id", "str", description="Native id of the account or company"),
        FieldSpec("account_name", "str"),
        FieldSpec("owner_id", "str", tracked=True, description="Native id of the owning user"),
        FieldSpec("owner_name", "str"),
        FieldSpec("owner_email", "str"),
        FieldSpec("owner_active", "bool", description="False when the owner is deactivated"),
        FieldSpec("pipeline", "str", description="Pipeline (HubSpot) or sales process"),
        FieldSpec("stage", "str", tracked=True, description="The CRM's own stage name"),
        FieldSpec("is_closed", "bool"),
        FieldSpec("is_won", "bool"),
        FieldSpec("amount", "decimal", tracked=True),
        FieldSpec("currency", "str", description="ISO 4217 code"),
        FieldSpec("probability", "float", description="0 to 100"),
        FieldSpec("forecast_category", "str"),
        FieldSpec("close_date", "date", tracked=True),
        FieldSpec("next_step", "str", tracked=True),
        FieldSpec("last_activity_at", "datetime"),
        FieldSpec("created_at", "datetime"),
        FieldSpec("modified_at", "datetime", description="The CRM's modification stamp"),
        FieldSpec("stage_entered_at", "datetime", description="When the current stage began"),
        # qualification (BANT and MEDDIC)
        FieldSpec("budget", "str", description="Budget (BANT): what is known of it"),
        FieldSpec("budget_confirmed", "bool", description="Budget (BANT) confirmed"),
        FieldSpec("economic_buyer", "str", description="Authority (BANT), Economic buyer"),
        FieldSpec("pain", "str", description="Need (BANT), Identify pain (MEDDIC)"),
        FieldSpec("timeline", "str", description="Timeline (BANT)"),
        FieldSpec("metrics", "str", description="Metrics (MEDDIC)"),
        FieldSpec("decision_criteria", "str", description="Decision criteria (MEDDIC)"),
        FieldSpec("decision_process", "str", description="Decision process (MEDDIC)"),
        FieldSpec("champion", "str", description="Champion (MEDDIC)"),
        # set by crmsync, never by a mapping
        FieldSpec("stage_canonical", "str", mappable=False),
        FieldSpec("deleted", "bool", mappable=False),
    )
}

TRACKED_FIELDS = tuple(f.name for f in FIELDS.values() if f.tracked)


@dataclass(frozen=True, slots=True)
class Opportunity:
    """One opportunity or deal, normalized. `key` is `connection:native_id`."""

    connection: str
    native_id: str
    source: str  # "salesforce" | "hubspot"
    name: str
    modified_at: datetime
    account_id: str | None = None
    account_name: str | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    owner_email: str | None = None
    owner_active: bool | None = None
    pipeline: str | None = None
    stage: str | None = None
    stage_canonical: str | None = None
    is_closed: bool = False
    is_won: bool = False
    amount: Decimal | None = None
    currency: str | None = None
    probability: float | None = None
    forecast_category: str | None = None
    close_date: date | None = None
    next_step: str | None = None
    last_activity_at: datetime | None = None
    created_at: datetime | None = None
    stage_entered_at: datetime | None = None
    budget: str | None = None
    budget_confirmed: bool | None = None
    economic_buyer: str | None = None
    pain: str | None = None
    timeline: str | None = None
    metrics: str | None = None
    decision_criteria: str | None = None
    decision_process: str | None = None
    champion: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False

    @property
    def key(self) -> str:
        """The opportunity's identity across crmsync: connection name and the CRM's id."""
        return f"{self.connection}:{self.native_id}"
