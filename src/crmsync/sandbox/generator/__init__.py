"""Deterministic sample data for the sandbox Salesforce org and HubSpot portal.

`generate(n, seed, now)` makes `n` Salesforce Opportunities and, independently, `n` HubSpot deals
with the same statistical shape, plus the users/owners, accounts/companies, stage history and
associations around them. The same `(n, seed, now)` always gives the same output. `now` defaults
to the current UTC time truncated to the hour, so callers that need byte-identical output across
runs (tests, benchmarks) must pass `now` explicitly.

Shape of a pipeline (both CRMs)
    * Deals are created over the last two years; about 65 % end open, the rest closed won or lost
      (HubSpot renewals, ~20 % of deals in their own pipeline, close more often and win more).
      Open deals skew young but some are years-old zombies.
    * Each deal walks its pipeline forward from the first (sometimes second) stage, occasionally
      skipping a stage (8 % a step) or regressing one (5 % a step, at most twice), and closed deals
      end with a move to the won or lost stage; the close date becomes the day it closed.
    * Amounts are log-normal (median ~35k, mostly 5k-250k, 85 % USD); 30 % of deals change
      amount one to three times. Close dates are pushed 0-6 times (55 % never, 25 % once).
    * Qualification fields (BANT/MEDDIC) are filled more often the later the stage, scaled by a
      per-deal rep diligence (0.97/0.85/0.45), so late-stage deals still miss some of them.
    * About one user/owner in ten is inactive/archived; they still own some deals.

Dirty data, on purpose (rates are of the population named; same in both CRMs)
    * missing amount: 4 % of deals (5 % of closed-won deals: closed won without amount);
    * absurd amount: 1.5 % (0.01, 1e10, or negative);
    * close date in the past on open deals: 6 % of open deals;
    * no next step on open deals: 6 % None, 2 % empty string (HubSpot: a cleared value);
    * probability inconsistent with stage: 4 % of open Salesforce deals; HubSpot's probability is
      calculated, so there the forecast category disagrees with the stage instead (4 %);
    * very long text: 1 % of deals have a Description of thousands of characters and 1 % of open
      deals a NextStep at the 255-character limit (HubSpot: thousands of characters);
    * unicode (accented, Greek, Cyrillic, CJK) in ~5 % of account/company names and in several
      user/owner names (always "José Núñez", "Zoë Ångström" and "李 伟"); emoji in 2 % of deal
      names; 1 % of account names are very long (up to 255 characters);
    * None where usually set: AccountId 1 %, Type/dealtype 3-5 %; HubSpot owner 2 % and close
      date 1 % of open deals;
    * owner inactive/archived: 4 % of deals (plus 8 % of HubSpot deals changed owner once).

Conventions (as the sandbox org derives them on writes): ForecastCategory and
ForecastCategoryName both hold the stage's forecast category from OPPORTUNITY_STAGES;
ExpectedRevenue = round(Amount * Probability / 100, 2); LastStageChangeDate is the CreatedDate
when the stage never changed. Salesforce datetimes are whole seconds (`.000`), so records often
share a timestamp. HubSpot close dates are midnight UTC of the close day. No tasks are generated
(the product creates them); the task lists are present and empty.
Records are plain wire values; repeated strings (picklists, stage names, dates, text pools) are
shared objects, and the per-record work avoids helpers so that 100k deals per CRM take seconds.

`salesforce_deals(n, seed, now)` gives the same Opportunities one at a time, for callers that
must not hold them all (the evaluation benchmark streams a million). The parts: `text` (word
lists), `rates` (the dirty-data rates above), `plan` (one deal's life, shared by both CRMs),
`salesforce` and `hubspot` (each CRM's records).
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import crmsync.sandbox.generator.hubspot as hubspot_records
import crmsync.sandbox.generator.salesforce as salesforce_records
from crmsync.sandbox.generated import GeneratedData
from crmsync.sandbox.generator.plan import Time
from crmsync.sandbox.salesforce.ids import make_id

__all__ = ["SalesforceDeal", "generate", "salesforce_deals"]


def generate(
    opportunities: int,
    seed: int = 7,
    now: datetime | None = None,
    *,
    salesforce: bool = True,
    hubspot: bool = True,
) -> GeneratedData:
    """Generate `opportunities` Salesforce Opportunities and as many HubSpot deals, with owners,
    accounts/companies, history and associations.

    Deterministic in (opportunities, seed, now). `now` defaults to the current UTC time truncated
    to the hour; pass it explicitly for byte-identical output. All timestamps are <= now. Each CRM
    has its own random stream, so leaving one out (`salesforce=False`: a HubSpot portal alone)
    gives the other's records unchanged.
    """
    tm = Time(_start(opportunities, now))
    data = GeneratedData()
    # The output is millions of small acyclic containers; cyclic GC passes over them would only
    # cost time (about a third of the total at 100k), so collection waits until we are done.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if salesforce:
            salesforce_records.add_records(data, opportunities, _rng(seed, "salesforce"), tm)
        if hubspot:
            hubspot_records.add_records(data, opportunities, _rng(seed, "hubspot"), tm)
    finally:
        if gc_was_enabled:
            gc.enable()
    return data


class SalesforceDeal(NamedTuple):
    """One generated Opportunity with what a query of it would join in."""

    opportunity: dict[str, Any]
    history: list[dict[str, Any]]  # its OpportunityHistory rows, oldest first
    owner: dict[str, Any]  # the User record of its OwnerId
    account_name: str | None  # the Name of its AccountId's Account (None without an account)


def salesforce_deals(
    opportunities: int, seed: int = 7, now: datetime | None = None
) -> Iterator[SalesforceDeal]:
    """The Salesforce Opportunities of `generate(opportunities, seed, now)`, the same records,
    made one at a time and kept by nobody, so memory stays flat however many are made.

    Users are kept (a few hundred); accounts only as a reference to their name each (few names
    are distinct, each is kept once); an opportunity's account id is computed when it is needed.
    """
    tm = Time(_start(opportunities, now))
    rng = _rng(seed, "salesforce")
    users = salesforce_records.users(opportunities, rng, tm)
    owners = {u["Id"]: u for u in users}
    distinct: dict[str, str] = {}
    names = [
        distinct.setdefault(a["Name"], a["Name"])
        for a in salesforce_records.accounts(opportunities, rng, tm, users)
    ]
    # account i has the (i+1)th Account id, as `accounts` takes them from id_sequence("001")
    deals = salesforce_records.opportunities(
        opportunities, rng, tm, users, names, lambda i: make_id("001", i + 1)
    )
    for opportunity, history, account in deals:
        yield SalesforceDeal(
            opportunity,
            history,
            owners[opportunity["OwnerId"]],
            None if opportunity["AccountId"] is None else names[account],
        )


def _start(opportunities: int, now: datetime | None) -> datetime:
    """Check the count; `now` as an aware datetime (the current hour when None)."""
    if opportunities < 0:
        raise ValueError("opportunities must be >= 0")
    if now is None:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


def _rng(seed: int, crm: str) -> random.Random:
    return random.Random(f"crmsync-sandbox:{seed}:{crm}")
