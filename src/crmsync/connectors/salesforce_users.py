"""Salesforce's users as the owner directory task routing reads: `IsActive` and `ManagerId`.

One SOQL query over User (followed through `nextRecordsUrl`), asked only when a connection
routes tasks (`routing:` in its config), so a plain sync spends no call on it.
"""

from __future__ import annotations

from crmsync.connectors.salesforce_api import SalesforceApi
from crmsync.model.owners import OwnerEntry

SOQL = "SELECT Id, Name, Email, IsActive, ManagerId FROM User ORDER BY Id"


def read_users(api: SalesforceApi) -> list[OwnerEntry]:
    """Every user, active or not, with their manager's id."""
    first = api.call("users", lambda sf: sf.query(SOQL))
    out: list[OwnerEntry] = []
    for result in api.follow(first, {}):
        for rec in result["records"]:
            manager = rec.get("ManagerId")
            out.append(
                OwnerEntry(
                    str(rec["Id"]),
                    rec.get("Name") or None,
                    rec.get("Email") or None,
                    bool(rec.get("IsActive")),
                    str(manager) if manager else None,
                )
            )
    return out
