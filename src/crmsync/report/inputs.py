"""What the report's figures are made of (`Inputs`, gathered by the app from the store) and the
small helpers its section modules share for labels, ids and amounts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from crmsync.model.snapshots import SnapshotRow
from crmsync.report.coverage import Coverage
from crmsync.report.hygiene import Finding
from crmsync.report.weeks import WeekFigures


@dataclass(frozen=True)
class Deal:
    """What a table shows of a deal beyond its snapshot row."""

    name: str
    connection: str


@dataclass
class Inputs:
    """Everything the report's figures are made of, already narrowed to the report's filters.

    `start` and `end` are the open rows at `since` and `until`; `weekly` the figures of each
    week's end (`week_figures`). `fate` says what became of deals open at the start and open
    nowhere at the end (flow.WON, LOST or OPEN). `stays` are the completed stays and `paths`
    the stage paths of the deals in scope (closed ones too); `in_stage` (stage, days in it now)
    per open deal.
    """

    since: date
    until: date
    window_end: date
    generated_at: datetime
    scope: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    start: Sequence[SnapshotRow] = ()
    end: Sequence[SnapshotRow] = ()
    weekly: Mapping[date, WeekFigures] = field(default_factory=dict)
    fate: Mapping[str, str] = field(default_factory=dict)
    deals: Mapping[str, Deal] = field(default_factory=dict)
    owner_names: Mapping[str, str] = field(default_factory=dict)
    pushes: Mapping[str, int] = field(default_factory=dict)
    stays: Sequence[tuple[str, float]] = ()
    paths: Sequence[Sequence[str]] = ()
    in_stage: Sequence[tuple[str | None, float]] = ()
    findings: Sequence[Finding] = ()
    coverage: Sequence[Coverage] | None = None
    has_snapshots: bool = True
    # the first day the snapshots know the workflows' findings (None: no day yet); the days
    # before it (backfilled, or synced before any workflow ran) show no hygiene score
    findings_known: date | None = date.min
    filtered: bool = False  # an owner, team or pipeline filter narrows the report


STAGE_LABELS = {
    "qualified": "Qualified",
    "discovery": "Discovery",
    "proposal": "Proposal",
    "negotiation": "Negotiation",
    "closed_won": "Won",
    "closed_lost": "Lost",
    "unmapped": "Stage not mapped",
}


def money(value: Decimal) -> float:
    """An amount as a chart or table shows it: a float rounded to cents."""
    return round(float(value), 2)


def currency_label(currency: str) -> str:
    """A currency key as people read it."""
    return currency or "no currency"


def slug(text: str) -> str:
    """A piece of a chart or table id: lower case letters and digits, dashes between."""
    out = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return out or "none"


def owner_label(inputs: Inputs, owner_id: str | None) -> str:
    """An owner's name (their id when the store knows no name; "No owner" for none)."""
    if not owner_id:
        return "No owner"
    return inputs.owner_names.get(owner_id) or owner_id


def deal_label(inputs: Inputs, key: str) -> str:
    """A deal's name (its key when the store no longer knows it)."""
    deal = inputs.deals.get(key)
    return deal.name if deal else key
