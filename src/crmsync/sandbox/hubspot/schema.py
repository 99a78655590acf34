"""The HubSpot object types, properties, pipelines and association types the sandbox portal knows.

Property values travel as strings (or null) on HubSpot's wire; `type` decides how search filters and
sorts compare them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Property:
    """One object property as the properties API reports it."""

    name: str
    type: str  # string, number, datetime, date, enumeration, bool
    label: str = ""
    field_type: str = "text"
    group: str = "dealinformation"
    calculated: bool = False
    read_only: bool = False
    custom: bool = False
    history: bool = False  # kept with timestamps for propertiesWithHistory
    unique: bool = False  # hasUniqueValue: no two objects share a value; batch read by idProperty


# object type name -> object type id, as in /crm/v3/objects/{objectType}
OBJECT_TYPE_IDS: dict[str, str] = {"companies": "0-2", "deals": "0-3", "tasks": "0-27"}
OBJECT_TYPE_NAMES: dict[str, str] = {v: k for k, v in OBJECT_TYPE_IDS.items()}
SINGULAR: dict[str, str] = {"companies": "company", "deals": "deal", "tasks": "task"}


def object_type(name_or_id: str) -> str | None:
    """The plural object type name for a path segment (`deals`, `deal`, `0-3`), or None."""
    key = name_or_id.lower()
    if key in OBJECT_TYPE_IDS:
        return key
    if key in OBJECT_TYPE_NAMES:
        return OBJECT_TYPE_NAMES[key]
    for plural, singular in SINGULAR.items():
        if key == singular:
            return plural
    return None


_COMMON = (
    Property("hs_object_id", "number", "Record ID", "number", read_only=True),
    Property("createdate", "datetime", "Create Date", "date", read_only=True),
    Property("hs_lastmodifieddate", "datetime", "Last Modified Date", "date", read_only=True),
    Property("hubspot_owner_id", "enumeration", "Owner", "select", history=True),
)

DEAL_PROPERTIES: tuple[Property, ...] = (
    *_COMMON,
    Property("dealname", "string", "Deal Name", history=True),
    Property("amount", "number", "Amount", "number", history=True),
    Property("deal_currency_code", "enumeration", "Currency", "select"),
    Property("dealstage", "enumeration", "Deal Stage", "radio", history=True),
    Property("pipeline", "enumeration", "Pipeline", "select", history=True),
    Property("closedate", "datetime", "Close Date", "date", history=True),
    Property("description", "string", "Deal Description", "textarea"),
    Property("dealtype", "enumeration", "Deal Type", "radio"),
    Property("hs_next_step", "string", "Next Step", "textarea", history=True),
    Property(
        "hs_deal_stage_probability",
        "number",
        "Deal Stage Probability",
        "number",
        calculated=True,
        read_only=True,
    ),
    Property("hs_forecast_category", "enumeration", "Forecast Category", "select"),
    Property(
        "hs_is_closed",
        "bool",
        "Is Deal Closed?",
        "booleancheckbox",
        calculated=True,
        read_only=True,
    ),
    Property(
        "hs_is_closed_won",
        "bool",
        "Is Closed Won",
        "booleancheckbox",
        calculated=True,
        read_only=True,
    ),
    Property("notes_last_updated", "datetime", "Last Activity Date", "date", read_only=True),
    Property(
        "hs_last_sales_activity_timestamp",
        "datetime",
        "Last Engagement Date",
        "date",
        read_only=True,
    ),
    Property(
        "num_associated_contacts",
        "number",
        "Number of Contacts",
        "number",
        calculated=True,
        read_only=True,
    ),
    Property("economic_buyer", "string", "Economic Buyer", custom=True, group="qualification"),
    Property(
        "decision_criteria",
        "string",
        "Decision Criteria",
        "textarea",
        custom=True,
        group="qualification",
    ),
    Property(
        "decision_process",
        "string",
        "Decision Process",
        "textarea",
        custom=True,
        group="qualification",
    ),
    Property("champion", "string", "Champion", custom=True, group="qualification"),
    Property("metrics", "string", "Metrics", "textarea", custom=True, group="qualification"),
    Property(
        "identified_pain",
        "string",
        "Identified Pain",
        "textarea",
        custom=True,
        group="qualification",
    ),
    Property(
        "budget_confirmed",
        "bool",
        "Budget Confirmed",
        "booleancheckbox",
        custom=True,
        group="qualification",
    ),
    Property(
        "decision_timeline", "string", "Decision Timeline", custom=True, group="qualification"
    ),
    Property("crmsync_flags", "string", "CRMSync Flags", custom=True, group="crmsync"),
)

TASK_PROPERTIES: tuple[Property, ...] = (
    *_COMMON,
    Property("hs_timestamp", "datetime", "Due date", "date", group="task"),
    Property("hs_task_subject", "string", "Task Title", group="task"),
    Property("hs_task_body", "string", "Notes", "textarea", group="task"),
    Property("hs_task_status", "enumeration", "Task Status", "select", group="task"),
    Property("hs_task_priority", "enumeration", "Priority", "select", group="task"),
    Property("hs_task_type", "enumeration", "Task Type", "select", group="task"),
    Property(
        "hs_task_completion_date", "datetime", "Completed at", "date", group="task", read_only=True
    ),
    Property("crmsync_key", "string", "CRMSync Key", custom=True, group="crmsync", unique=True),
    Property("crmsync_note", "string", "CRMSync Note", "textarea", custom=True, group="crmsync"),
)

COMPANY_PROPERTIES: tuple[Property, ...] = (
    *_COMMON,
    Property("name", "string", "Company name", group="companyinformation"),
    Property("domain", "string", "Company Domain Name", group="companyinformation"),
    Property("industry", "enumeration", "Industry", "select", group="companyinformation"),
)

PROPERTIES: dict[str, dict[str, Property]] = {
    "deals": {p.name: p for p in DEAL_PROPERTIES},
    "tasks": {p.name: p for p in TASK_PROPERTIES},
    "companies": {p.name: p for p in COMPANY_PROPERTIES},
}

# Properties returned when a request names none.
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "tasks": (
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_task_subject",
        "hs_task_status",
        "hs_timestamp",
    ),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
}

TASK_STATUSES = ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")
TASK_PRIORITIES = ("NONE", "LOW", "MEDIUM", "HIGH")
TASK_TYPES = ("TODO", "CALL", "EMAIL")


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: id, label, order, probability (0..1) and whether it closes the deal."""

    id: str
    label: str
    probability: float
    is_closed: bool


@dataclass(frozen=True)
class Pipeline:
    """A deal pipeline and its stages in order."""

    id: str
    label: str
    stages: tuple[Stage, ...]


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        "default",
        "Sales Pipeline",
        (
            Stage("appointmentscheduled", "Appointment Scheduled", 0.2, False),
            Stage("qualifiedtobuy", "Qualified To Buy", 0.4, False),
            Stage("presentationscheduled", "Presentation Scheduled", 0.6, False),
            Stage("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
            Stage("contractsent", "Contract Sent", 0.9, False),
            Stage("closedwon", "Closed Won", 1.0, True),
            Stage("closedlost", "Closed Lost", 0.0, True),
        ),
    ),
    Pipeline(
        "renewals",
        "Renewals & Expansion",
        (
            Stage("1001", "Renewal Identified", 0.5, False),
            Stage("1002", "Renewal Proposal", 0.7, False),
            Stage("1003", "Renewal Negotiation", 0.85, False),
            Stage("1004", "Renewed", 1.0, True),
            Stage("1005", "Churned", 0.0, True),
        ),
    ),
)

STAGES: dict[str, Stage] = {s.id: s for p in PIPELINES for s in p.stages}

# (from type, to type) -> HUBSPOT_DEFINED association type id
ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("tasks", "deals"): 216,
    ("deals", "tasks"): 215,
    ("deals", "companies"): 5,
    ("companies", "deals"): 342,
    ("tasks", "companies"): 192,
    ("companies", "tasks"): 191,
}
