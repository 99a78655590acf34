"""The plain records a HubSpot portal holds: objects with string properties and their history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class HsRecord:
    """One CRM object (deal, task, company). Property values are wire strings or None."""

    id: int
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    archived_at: datetime | None = None
    # property name -> [(value, when)], oldest first; only for properties with history=True
    history: dict[str, list[tuple[str | None, datetime]]] = field(default_factory=dict)


@dataclass
class HsOwner:
    """A HubSpot user who can own records."""

    id: str
    email: str
    first_name: str
    last_name: str
    user_id: int
    archived: bool
    created_at: datetime
    updated_at: datetime
    teams: list[dict[str, Any]] = field(default_factory=list)  # {id, name, primary}


@dataclass
class Association:
    """A link between two objects; the portal stores it in both directions."""

    from_type: str
    from_id: int
    to_type: str
    to_id: int
