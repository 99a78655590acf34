"""The sObjects the sandbox org knows: fields, types and relationships, as describe reports them.

The SOQL engine, the generator and the REST handlers all read this one table, so a field exists
everywhere or nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    """One sObject field as the describe call reports it."""

    name: str
    type: str  # id, boolean, string, textarea, picklist, currency, percent, double, int, date,
    # datetime, reference, email, phone
    label: str = ""
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    custom: bool = False
    calculated: bool = False
    external_id: bool = False
    unique: bool = False
    length: int = 0
    picklist: tuple[str, ...] = ()


@dataclass(frozen=True)
class SObject:
    """One sObject: its key prefix (the first three characters of its ids) and its fields."""

    name: str
    key_prefix: str
    fields: tuple[Field, ...]
    label: str = ""
    by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)
    by_lower: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)
    relationships: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            self.by_name[f.name] = f
            self.by_lower[f.name.lower()] = f
            if f.relationship_name:
                self.relationships[f.relationship_name.lower()] = f

    def field(self, name: str) -> Field | None:
        """The field called `name`, case-insensitively, as SOQL resolves names."""
        return self.by_lower.get(name.lower())


def ro(
    name: str,
    type: str,
    label: str = "",
    reference_to: tuple[str, ...] = (),
    relationship_name: str | None = None,
    *,
    nillable: bool = True,
    custom: bool = False,
    calculated: bool = False,
) -> Field:
    """A field no client may create or update (system and formula fields)."""
    return Field(
        name,
        type,
        label,
        reference_to,
        relationship_name,
        createable=False,
        updateable=False,
        nillable=nillable,
        custom=custom,
        calculated=calculated,
    )


def _sys(*extra: Field) -> tuple[Field, ...]:
    """Fields every sObject has, followed by the object's own."""
    return (
        ro("Id", "id", "Record ID", nillable=False),
        ro("IsDeleted", "boolean", "Deleted", nillable=False),
        *extra,
        ro("CreatedDate", "datetime", "Created Date", nillable=False),
        ro("CreatedById", "reference", "Created By ID", ("User",), "CreatedBy"),
        ro("LastModifiedDate", "datetime", "Last Modified Date", nillable=False),
        ro(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            ("User",),
            "LastModifiedBy",
        ),
        ro("SystemModstamp", "datetime", "System Modstamp", nillable=False),
    )


OPPORTUNITY_STAGES: tuple[tuple[str, int, str, bool, bool], ...] = (
    # name, default probability, forecast category, is_closed, is_won
    ("Prospecting", 10, "Pipeline", False, False),
    ("Qualification", 10, "Pipeline", False, False),
    ("Needs Analysis", 20, "Pipeline", False, False),
    ("Value Proposition", 50, "Pipeline", False, False),
    ("Id. Decision Makers", 60, "Pipeline", False, False),
    ("Perception Analysis", 70, "Pipeline", False, False),
    ("Proposal/Price Quote", 75, "BestCase", False, False),
    ("Negotiation/Review", 90, "Commit", False, False),
    ("Closed Won", 100, "Closed", True, True),
    ("Closed Lost", 0, "Omitted", True, False),
)

USER = SObject(
    "User",
    "005",
    (
        ro("Id", "id", "User ID", nillable=False),
        Field("Username", "string", "Username", nillable=False, length=80),
        Field("FirstName", "string", "First Name", length=40),
        Field("LastName", "string", "Last Name", nillable=False, length=80),
        ro("Name", "string", "Full Name"),
        Field("Email", "email", "Email", nillable=False, length=128),
        Field("IsActive", "boolean", "Active", nillable=False),
        Field("ManagerId", "reference", "Manager ID", ("User",), "Manager"),
        Field("Title", "string", "Title", length=80),
        ro("CreatedDate", "datetime", "Created Date", nillable=False),
        ro("LastModifiedDate", "datetime", "Last Modified Date", nillable=False),
        ro("SystemModstamp", "datetime", "System Modstamp", nillable=False),
    ),
    "User",
)

ACCOUNT = SObject(
    "Account",
    "001",
    _sys(
        Field("Name", "string", "Account Name", nillable=False, length=255),
        Field("Industry", "picklist", "Industry", length=255),
        Field("AnnualRevenue", "currency", "Annual Revenue"),
        Field("NumberOfEmployees", "int", "Employees"),
        Field("OwnerId", "reference", "Owner ID", ("User",), "Owner", nillable=False),
    ),
    "Account",
)

OPPORTUNITY = SObject(
    "Opportunity",
    "006",
    _sys(
        Field("AccountId", "reference", "Account ID", ("Account",), "Account"),
        Field("Name", "string", "Name", nillable=False, length=120),
        Field("Description", "textarea", "Description", length=32000),
        Field(
            "StageName",
            "picklist",
            "Stage",
            nillable=False,
            length=255,
            picklist=tuple(s[0] for s in OPPORTUNITY_STAGES),
        ),
        Field("Amount", "currency", "Amount"),
        Field("Probability", "percent", "Probability (%)"),
        ro("ExpectedRevenue", "currency", "Expected Amount", calculated=True),
        Field("CloseDate", "date", "Close Date", nillable=False),
        Field(
            "Type",
            "picklist",
            "Opportunity Type",
            length=255,
            picklist=("New Business", "Existing Customer - Upgrade", "Existing Customer - Renewal"),
        ),
        Field("NextStep", "string", "Next Step", length=255),
        Field("LeadSource", "picklist", "Lead Source", length=255),
        ro("IsClosed", "boolean", "Closed", nillable=False),
        ro("IsWon", "boolean", "Won", nillable=False),
        ro("ForecastCategory", "picklist", "Forecast Category", nillable=False),
        Field("ForecastCategoryName", "picklist", "Forecast Category", length=255),
        Field(
            "CurrencyIsoCode",
            "picklist",
            "Opportunity Currency",
            length=3,
            picklist=("USD", "EUR", "GBP", "JPY"),
        ),
        Field("OwnerId", "reference", "Owner ID", ("User",), "Owner", nillable=False),
        ro("LastActivityDate", "date", "Last Activity"),
        ro("LastStageChangeDate", "datetime", "Last Stage Change Date"),
        ro("HasOpenActivity", "boolean", "Has Open Activity", nillable=False),
        ro("HasOverdueTask", "boolean", "Has Overdue Task", nillable=False),
        Field("Economic_Buyer__c", "string", "Economic Buyer", custom=True, length=255),
        Field("Decision_Criteria__c", "textarea", "Decision Criteria", custom=True, length=32768),
        Field("Decision_Process__c", "textarea", "Decision Process", custom=True, length=32768),
        Field("Champion__c", "string", "Champion", custom=True, length=255),
        Field("Metrics__c", "textarea", "Metrics", custom=True, length=32768),
        Field("Identified_Pain__c", "textarea", "Identified Pain", custom=True, length=32768),
        Field("Budget_Confirmed__c", "boolean", "Budget Confirmed", nillable=False, custom=True),
        Field("Decision_Timeline__c", "string", "Decision Timeline", custom=True, length=255),
        ro(
            "Days_Since_Last_Touch__c",
            "double",
            "Days Since Last Touch",
            custom=True,
            calculated=True,
        ),
        Field("CRMSync_Flags__c", "string", "CRMSync Flags", custom=True, length=255),
        Field("Needs_Review__c", "boolean", "Needs Review", nillable=False, custom=True),
    ),
    "Opportunity",
)

TASK = SObject(
    "Task",
    "00T",
    _sys(
        Field("WhoId", "reference", "Name ID", ("Contact", "Lead"), "Who"),
        Field("WhatId", "reference", "Related To ID", ("Opportunity", "Account"), "What"),
        Field("Subject", "string", "Subject", length=255),
        Field("Description", "textarea", "Description", length=32000),
        Field("ActivityDate", "date", "Due Date Only"),
        Field(
            "Status",
            "picklist",
            "Status",
            nillable=False,
            length=255,
            picklist=(
                "Not Started",
                "In Progress",
                "Completed",
                "Waiting on someone else",
                "Deferred",
            ),
        ),
        Field(
            "Priority",
            "picklist",
            "Priority",
            nillable=False,
            length=40,
            picklist=("High", "Normal", "Low"),
        ),
        ro("IsClosed", "boolean", "Closed", nillable=False),
        ro("IsHighPriority", "boolean", "High Priority", nillable=False),
        Field("OwnerId", "reference", "Assigned To ID", ("User",), "Owner", nillable=False),
        Field("Type", "picklist", "Type", length=40),
        Field("TaskSubtype", "picklist", "Task Subtype", length=40),
        Field("IsReminderSet", "boolean", "Reminder Set", nillable=False),
        Field("ReminderDateTime", "datetime", "Reminder Date/Time"),
        Field(
            "CRMSync_Key__c",
            "string",
            "CRMSync Key",
            custom=True,
            external_id=True,
            unique=True,
            length=255,
        ),
        Field("CRMSync_Note__c", "textarea", "CRMSync Note", custom=True, length=1000),
    ),
    "Task",
)

OPPORTUNITY_HISTORY = SObject(
    "OpportunityHistory",
    "008",
    (
        ro("Id", "id", "Opportunity History ID", nillable=False),
        ro("IsDeleted", "boolean", "Deleted", nillable=False),
        ro(
            "OpportunityId",
            "reference",
            "Opportunity ID",
            ("Opportunity",),
            "Opportunity",
            nillable=False,
        ),
        ro("StageName", "picklist", "Stage", nillable=False),
        ro("Amount", "currency", "Amount"),
        ro("PrevAmount", "currency", "Previous Amount"),
        ro("ExpectedRevenue", "currency", "Expected Revenue"),
        ro("CloseDate", "date", "Close Date"),
        ro("PrevCloseDate", "date", "Previous Close Date"),
        ro("Probability", "percent", "Probability (%)"),
        ro("ForecastCategory", "picklist", "Forecast Category"),
        ro("CreatedById", "reference", "Created By ID", ("User",), "CreatedBy"),
        ro("CreatedDate", "datetime", "Created Date", nillable=False),
        ro("SystemModstamp", "datetime", "System Modstamp", nillable=False),
    ),
    "Opportunity History",
)

SOBJECTS: dict[str, SObject] = {
    o.name.lower(): o for o in (USER, ACCOUNT, OPPORTUNITY, TASK, OPPORTUNITY_HISTORY)
}


def sobject(name: str) -> SObject | None:
    """The sObject called `name`, case-insensitively, or None."""
    return SOBJECTS.get(name.lower())


def describe(obj: SObject, api_version: str) -> dict[str, object]:
    """The sObject describe body, in the shape Salesforce returns it (the subset clients read)."""
    base = f"/services/data/v{api_version}/sobjects/{obj.name}"
    return {
        "name": obj.name,
        "label": obj.label or obj.name,
        "labelPlural": (obj.label or obj.name) + "s",
        "keyPrefix": obj.key_prefix,
        "custom": False,
        "createable": obj.name in ("Opportunity", "Task", "Account"),
        "updateable": obj.name in ("Opportunity", "Task", "Account", "User"),
        "deletable": obj.name in ("Opportunity", "Task", "Account"),
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "replicateable": True,
        "urls": {"sobject": base, "describe": base + "/describe", "rowTemplate": base + "/{ID}"},
        "fields": [_describe_field(f) for f in obj.fields],
    }


def _describe_field(f: Field) -> dict[str, object]:
    soap = {
        "id": "tns:ID",
        "reference": "tns:ID",
        "boolean": "xsd:boolean",
        "currency": "xsd:double",
        "percent": "xsd:double",
        "double": "xsd:double",
        "int": "xsd:int",
        "date": "xsd:date",
        "datetime": "xsd:dateTime",
    }.get(f.type, "xsd:string")
    return {
        "name": f.name,
        "label": f.label or f.name,
        "type": f.type,
        "soapType": soap,
        "length": f.length,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "custom": f.custom,
        "calculated": f.calculated,
        "externalId": f.external_id,
        "unique": f.unique,
        "filterable": True,
        "sortable": f.type not in ("textarea",),
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "picklistValues": [
            {"active": True, "defaultValue": False, "label": v, "value": v} for v in f.picklist
        ],
    }
