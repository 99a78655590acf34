"""Generated Salesforce records: Users, Accounts, and Opportunities with their OpportunityHistory.

Three steps, so that `generate` keeps every record while `salesforce_deals` streams opportunities
one at a time (keeping no account but its name); both draw exactly the same records.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from crmsync.sandbox.generated import GeneratedData
from crmsync.sandbox.generator.plan import (
    CURRENCIES,
    DAY,
    EV_CLOSE,
    EV_CLOSE_DATE,
    EV_STAGE,
    OPEN,
    WON,
    Shape,
    Time,
    count_companies,
    count_people,
    plan_deal,
)
from crmsync.sandbox.generator.rates import (
    P_EMOJI_NAME,
    P_INACTIVE_OWNER,
    P_NO_ACCOUNT,
    P_NO_TYPE,
)
from crmsync.sandbox.generator.text import (
    BUYERS,
    CHAMPIONS,
    CRITERIA,
    EMOJI,
    LEAD_SOURCES,
    LONG_NEXT_STEPS_SF,
    METRICS,
    PAINS,
    PROCESS,
    PRODUCTS,
    SF_INDUSTRIES,
    SPECIAL_PEOPLE,
    TIMELINES,
    TITLES,
    company_name,
    draw_description,
    draw_next_step,
    emails,
    people,
)
from crmsync.sandbox.salesforce.ids import id_sequence
from crmsync.sandbox.salesforce.schema import OPPORTUNITY_STAGES

# An opportunity, its OpportunityHistory rows (oldest first) and the index of its account.
Deal = tuple[dict[str, Any], list[dict[str, Any]], int]

_SF_BAD_PROBABILITIES = (5.0, 25.0, 35.0, 40.0, 80.0, 95.0, 100.0)  # no stage has these
_SF_OPEN = [s for s in OPPORTUNITY_STAGES if not s[3]]
_SF_ORDER = (
    *_SF_OPEN,
    next(s for s in OPPORTUNITY_STAGES if s[4]),
    next(s for s in OPPORTUNITY_STAGES if s[3] and not s[4]),
)
_SF_SHAPE = Shape(
    len(_SF_OPEN), 0.65, 0.14, (22, 18, 15, 12, 10, 9, 8, 6), (24, 20, 16, 12, 10, 8, 6, 4)
)


def add_records(data: GeneratedData, n: int, rng: random.Random, tm: Time) -> None:
    """Put every generated record of the org into `data.salesforce`, by sObject name."""
    user_list = users(n, rng, tm)
    account_list = list(accounts(n, rng, tm, user_list))
    names = [a["Name"] for a in account_list]
    ids = [a["Id"] for a in account_list]
    opps: list[dict[str, Any]] = []
    hist: list[dict[str, Any]] = []
    add_opp, add_hist = opps.append, hist.extend
    for opportunity, rows, _ in opportunities(n, rng, tm, user_list, names, ids.__getitem__):
        add_opp(opportunity)
        add_hist(rows)
    data.salesforce = {
        "User": user_list,
        "Account": account_list,
        "Opportunity": opps,
        "OpportunityHistory": hist,
        "Task": [],
    }


def users(n: int, rng: random.Random, tm: Time) -> list[dict[str, Any]]:
    """The org's User records: some inactive, and always a few with non-ASCII names."""
    rnd = rng.random
    now_t, sf = tm.now_t, tm.sf
    user_ids = id_sequence("005")
    n_users = count_people(n)
    names = people(rng, n_users)
    addresses = emails(names, "crmsync-sandbox.example")
    n_inactive = max(1, round(n_users / 10))
    inactive_at = set(rng.sample(range(len(SPECIAL_PEOPLE) + 1, n_users), n_inactive))
    users: list[dict[str, Any]] = []
    for i, (first, last) in enumerate(names):
        created = now_t - int((760 + 900 * rnd()) * DAY)
        modified = created + int((now_t - created) * rnd())
        users.append(
            {
                "Id": next(user_ids),
                "Username": addresses[i],
                "FirstName": first,
                "LastName": last,
                "Name": f"{first} {last}",
                "Email": addresses[i],
                "IsActive": i not in inactive_at,
                "ManagerId": None,  # the generated org has no reporting lines; tests set them
                "Title": TITLES[int(rnd() * len(TITLES))],
                "CreatedDate": sf(created),
                "LastModifiedDate": sf(modified),
                "SystemModstamp": sf(modified),
            }
        )
    return users


def accounts(
    n: int, rng: random.Random, tm: Time, users: Sequence[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """The org's Account records, made one at a time, owned by active users."""
    rnd = rng.random
    now_t, sf = tm.now_t, tm.sf
    active = [u["Id"] for u in users if u["IsActive"]]
    n_active = len(active)
    account_ids = id_sequence("001")
    n_acc = count_companies(n)
    for _ in range(n_acc):
        name = company_name(rnd)
        created = now_t - int((740 + 800 * rnd()) * DAY)
        modified = created + int((now_t - created) * rnd())
        who = active[int(rnd() * n_active)]
        stamp = sf(modified)
        yield {
            "Id": next(account_ids),
            "IsDeleted": False,
            "Name": name,
            "Industry": None if rnd() < 0.08 else SF_INDUSTRIES[int(rnd() * len(SF_INDUSTRIES))],
            "AnnualRevenue": None if rnd() < 0.2 else round(math.exp(rng.gauss(17.0, 1.6)), -3),
            "NumberOfEmployees": None if rnd() < 0.15 else int(math.exp(rng.gauss(5.5, 1.7))) + 1,
            "OwnerId": who,
            "CreatedDate": sf(created),
            "CreatedById": who,
            "LastModifiedDate": stamp,
            "LastModifiedById": who,
            "SystemModstamp": stamp,
        }


def opportunities(
    n: int,
    rng: random.Random,
    tm: Time,
    users: Sequence[dict[str, Any]],
    account_names: Sequence[str],
    account_id: Callable[[int], str],
) -> Iterator[Deal]:
    """`n` Opportunities, one at a time with their history; `account_id(i)` is the Id of the
    account named `account_names[i]`."""
    rnd = rng.random
    now_t, now_day, days, sf = tm.now_t, tm.now_day, tm.days, tm.sf
    all_ids = [u["Id"] for u in users]
    active = [u["Id"] for u in users if u["IsActive"]]
    inactive = [u["Id"] for u in users if not u["IsActive"]]
    n_all, n_active, n_inactive = len(all_ids), len(active), len(inactive)
    n_acc = len(account_names)
    stage_names = [s[0] for s in _SF_ORDER]
    stage_prob = [float(s[1]) for s in _SF_ORDER]
    stage_fc = [s[2] for s in _SF_ORDER]
    stage_closed = [s[3] for s in _SF_ORDER]
    stage_won = [s[4] for s in _SF_ORDER]
    types = ("New Business", "Existing Customer - Upgrade", "Existing Customer - Renewal")
    type_cum = (0.6, 0.8, 1.0)
    shape, fill = _SF_SHAPE, _SF_SHAPE.fill
    gauss = rng.gauss
    opp_ids = id_sequence("006")
    hist_ids = id_sequence("008")
    n_buyers, n_champ, n_crit, n_proc = len(BUYERS), len(CHAMPIONS), len(CRITERIA), len(PROCESS)
    n_metr, n_pain, n_time = len(METRICS), len(PAINS), len(TIMELINES)
    for _ in range(n):
        (
            outcome,
            reached,
            stage,
            created,
            last_stage_t,
            events,
            close,
            amount,
            cur,
            act,
            bad_prob,
        ) = plan_deal(rnd, gauss, shape, now_t)
        oid = next(opp_ids)
        hist: list[dict[str, Any]] = []
        add_hist = hist.append
        ai = int(rnd() * n_acc)
        if inactive and rnd() < P_INACTIVE_OWNER:
            owner = inactive[int(rnd() * n_inactive)]
        else:
            owner = active[int(rnd() * n_active)]

        # history: creation row, then one row per change
        bad_p = _SF_BAD_PROBABILITIES[int(rnd() * 7)] if bad_prob else 0.0
        prob = bad_p if bad_prob and last_stage_t == created else stage_prob[stage]
        created_s = sf(created)
        last_stage_s = created_s
        add_hist(
            _history_row(
                next(hist_ids),
                oid,
                stage_names[stage],
                amount,
                None,
                prob,
                days[close],
                None,
                stage_fc[stage],
                owner,
                created_s,
            )
        )
        last_t = created
        for t, kind, v in events:
            prev_amount, prev_close = amount, close
            stamp = sf(t)
            if kind in (EV_STAGE, EV_CLOSE):
                stage = v
                prob = bad_p if bad_prob and t == last_stage_t else stage_prob[v]
                last_stage_s = stamp
                if kind == EV_CLOSE:
                    close = t // DAY
            elif kind == EV_CLOSE_DATE:
                close = v
            else:
                amount = v
            hid = next(hist_ids)
            author = owner if rnd() < 0.85 else all_ids[int(rnd() * n_all)]
            add_hist(
                _history_row(
                    hid,
                    oid,
                    stage_names[stage],
                    amount,
                    prev_amount,
                    prob,
                    days[close],
                    days[prev_close],
                    stage_fc[stage],
                    author,
                    stamp,
                )
            )
            last_t = t

        # the rest of the record
        is_open = outcome == OPEN
        next_step = draw_next_step(rnd, is_open, LONG_NEXT_STEPS_SF)
        description = draw_description(rnd)
        name = f"{account_names[ai][:90]} - {PRODUCTS[int(rnd() * len(PRODUCTS))]}"
        if rnd() < P_EMOJI_NAME:
            name = EMOJI[int(rnd() * len(EMOJI))] + " " + name
        if len(name) > 120:
            name = name[:120]
        r = rnd()
        diligence = 0.45 if r < 0.2 else 0.85 if r < 0.6 else 0.97
        p = (1.0 if outcome == WON else fill[reached]) * diligence
        q = [rnd() for _ in range(8)]
        has_open = is_open and rnd() < 0.5
        lm = last_t if rnd() < 0.3 else last_t + int((now_t - last_t) * 0.5 * rnd())
        sm = lm if rnd() < 0.8 else lm + int((now_t - lm) * rnd())
        lm_s = sf(lm)
        act_day = None if act is None else act // DAY
        opportunity: dict[str, Any] = {
            "Id": oid,
            "IsDeleted": False,
            "AccountId": None if rnd() < P_NO_ACCOUNT else account_id(ai),
            "Name": name,
            "Description": description,
            "StageName": stage_names[stage],
            "Amount": amount,
            "Probability": prob,
            "ExpectedRevenue": None if amount is None else round(amount * prob / 100, 2),
            "CloseDate": days[close],
            "Type": None if rnd() < P_NO_TYPE else types[bisect(type_cum, rnd())],
            "NextStep": next_step,
            "LeadSource": None if rnd() < 0.15 else LEAD_SOURCES[int(rnd() * 10)],
            "IsClosed": stage_closed[stage],
            "IsWon": stage_won[stage],
            "ForecastCategory": stage_fc[stage],
            "ForecastCategoryName": stage_fc[stage],
            "CurrencyIsoCode": CURRENCIES[cur],
            "OwnerId": owner,
            "LastActivityDate": None if act_day is None else days[act_day],
            "LastStageChangeDate": last_stage_s,
            "HasOpenActivity": has_open,
            "HasOverdueTask": has_open and rnd() < 0.2,
            "Economic_Buyer__c": BUYERS[int(q[0] / p * n_buyers)] if q[0] < p else None,
            "Decision_Criteria__c": CRITERIA[int(q[1] / p * n_crit)] if q[1] < p else None,
            "Decision_Process__c": PROCESS[int(q[2] / p * n_proc)] if q[2] < p else None,
            "Champion__c": CHAMPIONS[int(q[3] / p * n_champ)] if q[3] < p else None,
            "Metrics__c": METRICS[int(q[4] / p * n_metr)] if q[4] < p else None,
            "Identified_Pain__c": PAINS[int(q[5] / p * n_pain)] if q[5] < p else None,
            "Budget_Confirmed__c": q[6] < p,
            "Decision_Timeline__c": TIMELINES[int(q[7] / p * n_time)] if q[7] < p else None,
            "Days_Since_Last_Touch__c": None if act_day is None else float(now_day - act_day),
            "CRMSync_Flags__c": None,
            "Needs_Review__c": False,
            "CreatedDate": created_s,
            "CreatedById": owner if rnd() < 0.7 else all_ids[int(rnd() * n_all)],
            "LastModifiedDate": lm_s,
            "LastModifiedById": owner if rnd() < 0.6 else all_ids[int(rnd() * n_all)],
            "SystemModstamp": lm_s if sm == lm else sf(sm),
        }
        yield opportunity, hist, ai


def _history_row(
    hid: str,
    oid: str,
    stage_name: str,
    amount: float | None,
    prev_amount: float | None,
    prob: float,
    close: str,
    prev_close: str | None,
    forecast: str,
    created_by: str,
    stamp: str,
) -> dict[str, Any]:
    """One OpportunityHistory row: the opportunity's values as of `stamp`."""
    return {
        "Id": hid,
        "IsDeleted": False,
        "OpportunityId": oid,
        "StageName": stage_name,
        "Amount": amount,
        "PrevAmount": prev_amount,
        "ExpectedRevenue": None if amount is None else round(amount * prob / 100, 2),
        "CloseDate": close,
        "PrevCloseDate": prev_close,
        "Probability": prob,
        "ForecastCategory": forecast,
        "CreatedById": created_by,
        "CreatedDate": stamp,
        "SystemModstamp": stamp,
    }
