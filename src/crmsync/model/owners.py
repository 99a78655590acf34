"""The owner directory of one connection: who may own a task, whether they are active, and who
their manager is (Salesforce `User.ManagerId`; HubSpot owners have no manager, only `teams`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OwnerEntry:
    """One user or owner of a CRM, as its users or owners API lists it."""

    id: str
    name: str | None
    email: str | None
    active: bool
    manager_id: str | None = None
    teams: tuple[str, ...] = ()  # team ids, the primary one first
