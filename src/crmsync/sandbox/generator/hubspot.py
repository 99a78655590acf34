"""Generated HubSpot records: owners, companies, and deals with their property history.

Deals follow the same plans as Salesforce opportunities (`plan.plan_deal`), in both pipelines,
with HubSpot's wire values (string properties, calculated probability and forecast category).
"""

from __future__ import annotations

import random
from datetime import datetime

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
    P_HS_NO_CLOSE_DATE,
    P_HS_NO_OWNER,
    P_HS_OWNER_CHANGE,
    P_INACTIVE_OWNER,
)
from crmsync.sandbox.generator.text import (
    BUYERS,
    CHAMPIONS,
    CRITERIA,
    EMOJI,
    HS_INDUSTRIES,
    LONG_NEXT_STEPS_HS,
    METRICS,
    NEXT_STEPS,
    PAINS,
    PROCESS,
    PRODUCTS,
    SPECIAL_PEOPLE,
    TIMELINES,
    ascii_fold,
    company_name,
    draw_description,
    draw_next_step,
    emails,
    people,
)
from crmsync.sandbox.hubspot.records import Association, HsOwner, HsRecord
from crmsync.sandbox.hubspot.schema import PIPELINES, Pipeline

_HS_FORECAST = ("PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMIT")


def _num(x: float) -> str:
    """HubSpot's number wire form: `12500` for whole numbers, `12500.5` otherwise."""
    i = int(x)
    return str(i) if i == x else repr(x)


def _hs_stage_order(pipeline: Pipeline) -> list[tuple[str, float, bool, bool]]:
    """(id, probability, is_closed, is_won) with open stages first, then won, then lost."""
    open_ = [s for s in pipeline.stages if not s.is_closed]
    won = next(s for s in pipeline.stages if s.is_closed and s.probability > 0)
    lost = next(s for s in pipeline.stages if s.is_closed and s.probability == 0)
    return [(s.id, s.probability, s.is_closed, s is won) for s in (*open_, won, lost)]


def _hs_forecast(probability: float, closed: bool, won: bool) -> str:
    if closed:
        return "CLOSED" if won else "OMIT"
    return "COMMIT" if probability >= 0.85 else "BEST_CASE" if probability >= 0.6 else "PIPELINE"


def add_records(data: GeneratedData, n: int, rng: random.Random, tm: Time) -> None:
    """Put the portal's generated owners, companies, deals and associations into `data`."""
    rnd = rng.random
    now_t, hs, dtm, hs_days = tm.now_t, tm.hs, tm.dt, tm.hs_days

    # owners
    n_owners = count_people(n)
    names = people(rng, n_owners)
    addresses = emails(names, "crmsync-portal.example")
    archived_at = set(
        rng.sample(range(len(SPECIAL_PEOPLE) + 1, n_owners), max(1, round(n_owners / 10)))
    )
    owners: list[HsOwner] = []
    for i, (first, last) in enumerate(names):
        created = now_t - int((760 + 900 * rnd()) * DAY)
        owners.append(
            HsOwner(
                id=str(52_550_153 + 9_973 * i),
                email=addresses[i],
                first_name=first,
                last_name=last,
                user_id=7_100_001 + 17 * i,
                archived=i in archived_at,
                created_at=dtm(created),
                updated_at=dtm(created + int((now_t - created) * rnd())),
            )
        )
    active = [o.id for o in owners if not o.archived]
    archived = [o.id for o in owners if o.archived]
    all_ids = [o.id for o in owners]
    n_all, n_active, n_archived = len(all_ids), len(active), len(archived)

    # companies
    n_comp = count_companies(n)
    companies: list[HsRecord] = []
    comp_names: list[str] = []
    for i in range(n_comp):
        cid = 10_001 + i
        name = company_name(rnd)
        comp_names.append(name)
        words = name.split()
        stem = "-".join(w for w in (ascii_fold(x) for x in words[:2]) if w)
        tld = (".com", ".io", ".de", ".co.uk", ".net")[int(rnd() * 5)]
        domain = None if not stem or rnd() < 0.05 else stem + tld
        created = now_t - int((740 + 800 * rnd()) * DAY)
        modified = created + int((now_t - created) * rnd())
        comp_owner = active[int(rnd() * n_active)]
        created_at = dtm(created)
        companies.append(
            HsRecord(
                id=cid,
                properties={
                    "hs_object_id": str(cid),
                    "createdate": hs(created),
                    "hs_lastmodifieddate": hs(modified),
                    "hubspot_owner_id": comp_owner,
                    "name": name,
                    "domain": domain,
                    "industry": None
                    if rnd() < 0.1
                    else HS_INDUSTRIES[int(rnd() * len(HS_INDUSTRIES))],
                },
                created_at=created_at,
                updated_at=dtm(modified),
                history={"hubspot_owner_id": [(comp_owner, created_at)]},
            )
        )

    # deals
    pipes = []
    for pipeline in PIPELINES:
        order = _hs_stage_order(pipeline)
        k = len(order) - 2
        renewal = pipeline.id != "default"
        shape = (
            Shape(
                k, 0.60, 0.30, [45, 35, 20][:k] + [20] * (k - 3), [40, 35, 25][:k] + [20] * (k - 3)
            )
            if renewal
            else Shape(
                k, 0.65, 0.14, [30 - 4 * i for i in range(k)], [30 - 4 * i for i in range(k)]
            )
        )
        pipes.append(
            (
                pipeline.id,
                shape,
                [s[0] for s in order],
                [_num(s[1]) for s in order],
                ["true" if s[2] else "false" for s in order],
                ["true" if s[3] else "false" for s in order],
                [_hs_forecast(s[1], s[2], s[3]) for s in order],
                renewal,
            )
        )
    p_renewal = 0.2 if len(pipes) > 1 else 0.0
    deal_base = 1_000_001
    while deal_base <= 10_001 + n_comp:
        deal_base = (deal_base - 1) * 10 + 1
    contacts = tuple(str(i) for i in range(7))
    gauss = rng.gauss
    deals: list[HsRecord] = []
    links: list[Association] = []
    add_deal, add_link = deals.append, links.append
    n_buyers, n_champ, n_crit, n_proc = len(BUYERS), len(CHAMPIONS), len(CRITERIA), len(PROCESS)
    n_metr, n_pain, n_time = len(METRICS), len(PAINS), len(TIMELINES)
    for i in range(n):
        did = deal_base + i
        pid, shape, stage_ids, probs, closed_s, won_s, forecast, renewal = pipes[
            1 if rnd() < p_renewal else 0
        ]
        (
            outcome,
            reached,
            stage,
            created,
            _last_stage_t,
            events,
            close,
            amount,
            cur,
            act,
            bad_prob,
        ) = plan_deal(rnd, gauss, shape, now_t)
        is_open = outcome == OPEN
        ci = int(rnd() * n_comp)
        t0 = dtm(created)
        last_t = created

        # owner and its history
        r = rnd()
        owner: str | None
        if r < P_HS_NO_OWNER:
            owner = None
        elif archived and r < P_HS_NO_OWNER + P_INACTIVE_OWNER:
            owner = archived[int(rnd() * n_archived)]
        else:
            owner = active[int(rnd() * n_active)]
        if owner is None:
            owner_h: list[tuple[str | None, datetime]] = []
        elif rnd() < P_HS_OWNER_CHANGE:
            t = created + 1 + int((now_t - created - 1) * rnd())
            owner_h = [(all_ids[int(rnd() * n_all)], t0), (owner, dtm(t))]
            last_t = t
        else:
            owner_h = [(owner, t0)]

        # stage, close date and amount histories
        has_close = not (is_open and rnd() < P_HS_NO_CLOSE_DATE)
        amount_s = None if amount is None else _num(amount)
        close_s = hs_days[close] if has_close else None
        stage_h: list[tuple[str | None, datetime]] = [(stage_ids[stage], t0)]
        close_h: list[tuple[str | None, datetime]] = [(close_s, t0)] if has_close else []
        amount_h: list[tuple[str | None, datetime]] = [] if amount is None else [(amount_s, t0)]
        for t, kind, v in events:
            when = dtm(t)
            if kind == EV_STAGE:
                stage = v
                stage_h.append((stage_ids[v], when))
            elif kind == EV_CLOSE:
                stage = v
                stage_h.append((stage_ids[v], when))
                if has_close and t // DAY != close:
                    close = t // DAY
                    close_s = hs_days[close]
                    close_h.append((close_s, when))
            elif kind == EV_CLOSE_DATE:
                if has_close:
                    close = v
                    close_s = hs_days[close]
                    close_h.append((close_s, when))
            else:
                amount_s = _num(v)
                amount_h.append((amount_s, when))
            if t > last_t:
                last_t = t

        # next step and its history
        next_step = draw_next_step(rnd, is_open, LONG_NEXT_STEPS_HS)
        # set at creation; cleared ("") or replaced later in most deals
        if next_step is None:
            next_h: list[tuple[str | None, datetime]] = []
        elif next_step != "" and rnd() < 0.4:
            next_h = [(next_step, t0)]
        else:
            t = created + 1 + int((now_t - created - 1) * rnd())
            next_h = [(NEXT_STEPS[int(rnd() * len(NEXT_STEPS))], t0), (next_step, dtm(t))]
            if t > last_t:
                last_t = t
        if act is not None and act > last_t:
            last_t = act

        description = draw_description(rnd)
        name = f"{comp_names[ci]} - {PRODUCTS[int(rnd() * len(PRODUCTS))]}"
        if rnd() < P_EMOJI_NAME:
            name = EMOJI[int(rnd() * len(EMOJI))] + " " + name
        if renewal:
            dealtype: str | None = "existingbusiness"
        else:
            r = rnd()
            dealtype = None if r < 0.05 else "newbusiness" if r < 0.8 else "existingbusiness"
        if bad_prob:
            fc: str | None = _HS_FORECAST[int(rnd() * 3)]
            if fc == forecast[stage]:
                fc = "OMIT"
        else:
            fc = None if rnd() < 0.05 else forecast[stage]
        r = rnd()
        diligence = 0.45 if r < 0.2 else 0.85 if r < 0.6 else 0.97
        p = (1.0 if outcome == WON else shape.fill[reached]) * diligence
        q = [rnd() for _ in range(8)]
        lm = last_t if rnd() < 0.3 else last_t + int((now_t - last_t) * 0.5 * rnd())
        act_s = None if act is None else hs(act)
        add_deal(
            HsRecord(
                id=did,
                properties={
                    "hs_object_id": str(did),
                    "createdate": hs(created),
                    "hs_lastmodifieddate": hs(lm),
                    "hubspot_owner_id": owner,
                    "dealname": name,
                    "amount": amount_s,
                    "deal_currency_code": CURRENCIES[cur],
                    "dealstage": stage_ids[stage],
                    "pipeline": pid,
                    "closedate": close_s,
                    "description": description,
                    "dealtype": dealtype,
                    "hs_next_step": next_step,
                    "hs_deal_stage_probability": probs[stage],
                    "hs_forecast_category": fc,
                    "hs_is_closed": closed_s[stage],
                    "hs_is_closed_won": won_s[stage],
                    "notes_last_updated": act_s,
                    "hs_last_sales_activity_timestamp": act_s if rnd() < 0.8 else None,
                    "num_associated_contacts": contacts[int(rnd() * 7)],
                    "economic_buyer": BUYERS[int(q[0] / p * n_buyers)] if q[0] < p else None,
                    "decision_criteria": CRITERIA[int(q[1] / p * n_crit)] if q[1] < p else None,
                    "decision_process": PROCESS[int(q[2] / p * n_proc)] if q[2] < p else None,
                    "champion": CHAMPIONS[int(q[3] / p * n_champ)] if q[3] < p else None,
                    "metrics": METRICS[int(q[4] / p * n_metr)] if q[4] < p else None,
                    "identified_pain": PAINS[int(q[5] / p * n_pain)] if q[5] < p else None,
                    "budget_confirmed": (
                        ("true" if q[6] < 0.8 * p else "false") if q[6] < p else None
                    ),
                    "decision_timeline": TIMELINES[int(q[7] / p * n_time)] if q[7] < p else None,
                    "crmsync_flags": None,
                },
                created_at=t0,
                updated_at=dtm(lm),
                history={
                    "hubspot_owner_id": owner_h,
                    "dealname": [(name, t0)],
                    "amount": amount_h,
                    "dealstage": stage_h,
                    "pipeline": [(pid, t0)],
                    "closedate": close_h,
                    "hs_next_step": next_h,
                },
            )
        )
        add_link(Association("deals", did, "companies", companies[ci].id))
    data.hubspot_owners = owners
    data.hubspot = {"companies": companies, "deals": deals, "tasks": []}
    data.hubspot_associations = links
