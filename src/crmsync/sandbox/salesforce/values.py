"""What a write to the sandbox org may hold: each field checked and converted as Salesforce does.

The org stores what `coerce` returns; a refused value raises the RecordError Salesforce would
report (statusCode, message, fields), which the API and admin answers pass on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from crmsync.sandbox.clock import parse_datetime, sf_datetime
from crmsync.sandbox.salesforce.ids import to_18
from crmsync.sandbox.salesforce.schema import OPPORTUNITY_STAGES, Field, SObject, sobject

STAGES = {s[0]: s for s in OPPORTUNITY_STAGES}
# The largest magnitude (exclusive) each numeric type holds: currency is (16, 2) by default,
# double and percent (18, 0), int 9 digits.
NUMBER_LIMITS = {"currency": 1e16, "percent": 1e18, "double": 1e18, "int": 1e9}
ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class RecordError(Exception):
    """A per-record failure, reported as Salesforce does: statusCode, message, fields."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "statusCode": self.status_code,
            "message": self.message,
            "fields": list(self.fields),
        }


# Looks a record up by id: (its sObject, the record), or None.
Finder = Callable[[str], tuple[SObject, dict[str, Any]] | None]


def coerce(
    obj: SObject, values: dict[str, Any], *, creating: bool, system: bool, find: Finder
) -> dict[str, Any]:
    """`values` as stored: field names as the schema spells them, values in wire form.

    Raises the RecordError Salesforce answers for the first field it refuses; `find` looks up
    the target of a reference field.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "attributes" or (key == "Id" and not creating):
            continue
        f = obj.field(key)
        if f is None:
            raise RecordError(
                "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", (key,)
            )
        allowed = f.createable if creating else f.updateable
        if not allowed and not system:
            raise RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {f.name}. Please check the security "
                "settings of this field and verify that it is read/write for your profile "
                "or permission set.",
                (f.name,),
            )
        out[f.name] = coerce_value(obj, f, value, find)
    return out


def coerce_value(obj: SObject, f: Field, value: Any, find: Finder) -> Any:
    """One field's value in wire form, or the RecordError for it."""
    if value is None or (value == "" and f.type not in ("string", "textarea")):
        if not f.nillable and f.type != "boolean":
            raise RecordError(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]", (f.name,)
            )
        return False if f.type == "boolean" else None
    bad = RecordError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{f.label or f.name}: value not of required type: {value}",
        (f.name,),
    )
    t = f.type
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad
    if t in ("currency", "percent", "double", "int"):
        if isinstance(value, bool):
            raise bad
        try:
            num = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if not math.isfinite(num) or abs(num) >= NUMBER_LIMITS[t]:
            # Salesforce caps numbers by the field's precision (Amount: currency(16, 2)) and
            # refuses the record; JSON cannot carry Infinity or NaN, so a 1e309 amount is never
            # stored or served (Salesforce help; ../shared/CRM_API_FACTS.md)
            raise RecordError(
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{f.label or f.name}: value outside of valid range on numeric field: {value}",
                (f.name,),
            )
        return int(num) if t == "int" else num
    if t == "date":
        if not isinstance(value, str) or not DATE_RE.match(value):
            raise bad
        try:
            date.fromisoformat(value)
        except ValueError:
            raise bad from None
        return value
    if t == "datetime":
        if not isinstance(value, str):
            raise bad
        try:
            return sf_datetime(parse_datetime(value))
        except ValueError:
            raise bad from None
    if not isinstance(value, str):
        raise bad
    if f.length and len(value) > f.length:
        raise RecordError(
            "STRING_TOO_LONG",
            f"{f.label}: data value too large: {value[:40]}... (max length={f.length})",
            (f.name,),
        )
    if t == "reference":
        if not ID_RE.match(value):
            raise RecordError(
                "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", (f.name,)
            )
        value = to_18(value)
        target = find(value)
        if target is None or target[0].name not in f.reference_to:
            raise RecordError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (f.name,)
            )
        return value
    if (
        t == "picklist"
        and f.picklist
        and obj.name == "Opportunity"
        and f.name == "StageName"
        and value not in STAGES
    ):
        raise RecordError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"Stage: bad value for restricted picklist field: {value}",
            (f.name,),
        )
    return value


def require(name: str) -> SObject:
    """The sObject called `name`, or the RecordError for an unknown one."""
    obj = sobject(name)
    if obj is None:
        raise RecordError("NOT_FOUND", f"The requested resource does not exist: {name}")
    return obj
