"""Mapping files: which CRM field feeds which normalized field, and native to canonical stages.

`connectors/salesforce.yaml` and `connectors/hubspot.yaml` are what an admin edits when their org
uses other field names. They are checked at load against the normalized model (unknown or
read-only fields, bad canonical stages), and again against the CRM's own schema when a sync starts.
Reading the file is `crmsync.config.load_mapping`; the write-back's lookups that can fail are in
`crmsync.connectors.base` (`custom_field`, `task_fields`).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crmsync.model.checks import FieldError
from crmsync.model.opportunity import CANONICAL_STAGES, FIELDS

ValueType = Literal["str", "bool", "decimal", "float", "int", "date", "datetime"]
Canonical = Literal[
    "qualified", "discovery", "proposal", "negotiation", "closed_won", "closed_lost"
]


class _Strict(BaseModel):
    """As `crmsync.files.FileModel`: unknown keys are errors, numbers may stand for text, `.nan`
    and `.inf` are refused (kept here so the vocabulary imports nothing of crmsync)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, coerce_numbers_to_str=True, allow_inf_nan=False
    )


class Source(_Strict):
    """Where one normalized field comes from, and how to read it."""

    field: str = Field(min_length=1, description="CRM field or property (or @derived source)")
    scale: float | None = Field(default=None, description="multiply numbers (0..1 -> 0..100)")
    reconcile: bool = Field(default=False, description="changes without a modification stamp")


class CustomSource(Source):
    """A CRM field kept under `custom.<name>` for rules to use."""

    type: ValueType = "str"


class TaskFields(_Strict):
    """Where crmsync's follow-up tasks keep their marks in the CRM (write-back)."""

    key_field: str = Field(
        min_length=1, description="a unique external-id text field on the task object"
    )
    note_field: str | None = Field(
        default=None, description="a text field for the note left when a task is auto-completed"
    )
    dismiss_status: str | None = Field(
        default=None,
        min_length=1,
        description="the task status a rep sets to dismiss a finding (default: Salesforce "
        "'Deferred', HubSpot 'DEFERRED')",
    )


class Mapping(_Strict):
    """One mapping file."""

    crm: Literal["salesforce", "hubspot"]
    object: str = Field(min_length=1)
    fields: dict[str, Source]
    custom: dict[str, CustomSource] = Field(default_factory=dict)
    stages: dict[str, Canonical]
    tasks: TaskFields | None = None  # needed to create tasks (write-back)
    path: Path | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        """`name: Name` is short for `name: {field: Name}`."""
        if isinstance(value, dict):
            return {k: {"field": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("custom", mode="before")
    @classmethod
    def _custom_short_form(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"field": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check(self) -> Mapping:
        for name in self.fields:
            spec = FIELDS.get(name)
            if spec is None:
                close = difflib.get_close_matches(name, FIELDS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise FieldError(
                    f"'{name}' is not a normalized field{hint}", "fields", name, key=True
                )
            if not spec.mappable:
                raise FieldError(
                    f"'{name}' is set by crmsync and cannot be mapped", "fields", name, key=True
                )
        if self.crm == "salesforce":  # '@' sources are HubSpot's (owners, stages, pipelines)
            for group, sources in (("fields", self.fields), ("custom", self.custom)):
                for name, src in sources.items():
                    if src.field.startswith("@"):
                        raise FieldError(
                            f"'{src.field}' is not a Salesforce field: '@' sources exist only "
                            "in HubSpot mappings (use a relationship path such as Owner.Name)",
                            group,
                            name,
                        )
        for required in ("name", "modified_at", "stage"):
            if required not in self.fields:
                raise FieldError(f"'{required}' must be mapped", "fields", key=True)
        for name in self.custom:
            if name in FIELDS:
                raise FieldError(
                    f"'{name}' is a normalized field; map it under fields instead",
                    "custom",
                    name,
                    key=True,
                )
        if not self.stages:
            raise FieldError(
                f"map at least one native stage to {', '.join(CANONICAL_STAGES)}",
                "stages",
                key=True,
            )
        return self

    def canonical_stage(self, native: str | None, *alternates: str | None) -> str | None:
        """The canonical stage for a native stage (HubSpot: its id or its label)."""
        for candidate in (native, *alternates):
            if candidate is not None and candidate in self.stages:
                return self.stages[candidate]
        return None

    def crm_fields(self) -> list[str]:
        """Every CRM field the mapping reads (plain fields, not @derived sources)."""
        out: list[str] = []
        for src in (*self.fields.values(), *self.custom.values()):
            if not src.field.startswith("@") and src.field not in out:
                out.append(src.field)
        return out

    def reconcile_fields(self) -> list[str]:
        """CRM fields marked as changing without touching the modification stamp."""
        return [
            s.field
            for s in (*self.fields.values(), *self.custom.values())
            if s.reconcile and not s.field.startswith("@")
        ]
