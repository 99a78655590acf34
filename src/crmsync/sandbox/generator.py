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
"""

from __future__ import annotations

import gc
import math
import random
import unicodedata
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from crmsync.sandbox.generated import GeneratedData
from crmsync.sandbox.hubspot.records import Association, HsOwner, HsRecord
from crmsync.sandbox.hubspot.schema import PIPELINES, Pipeline
from crmsync.sandbox.salesforce.ids import make_id
from crmsync.sandbox.salesforce.schema import OPPORTUNITY_STAGES

__all__ = ["generate"]

_DAY = 86_400
_BACK_DAYS = 3_000  # relative times count from midnight this many days before `now`
_AHEAD_DAYS = 1_500
_MAX_AGE = 730 * _DAY  # deals are created over the last two years

_OPEN, _WON, _LOST = 0, 1, 2
# event kinds in a deal plan
_EV_STAGE, _EV_CLOSE_DATE, _EV_AMOUNT, _EV_CLOSE = 0, 1, 2, 3

# ---- dirty-data rates (see the module docstring) --------------------------------------------
P_MISSING_AMOUNT = 0.04
P_WON_NO_AMOUNT = 0.05
P_ABSURD_AMOUNT = 0.015
P_PAST_CLOSE = 0.06
P_NEXT_STEP_NONE = 0.06
P_NEXT_STEP_EMPTY = 0.02
P_NEXT_STEP_LONG = 0.01
P_BAD_PROBABILITY = 0.04
P_LONG_DESCRIPTION = 0.01
P_EMOJI_NAME = 0.02
P_UNICODE_ACCOUNT = 0.05
P_LONG_ACCOUNT = 0.01
P_NO_ACCOUNT = 0.01
P_NO_TYPE = 0.03
P_INACTIVE_OWNER = 0.04
P_HS_NO_OWNER = 0.02
P_HS_NO_CLOSE_DATE = 0.01
P_HS_OWNER_CHANGE = 0.08


# ---- text pools -----------------------------------------------------------------------------
def _pool(text: str) -> tuple[str, ...]:
    """A tuple of the "|"-separated entries of `text`."""
    return tuple(text.split("|"))


_FIRST_NAMES = _pool(
    "James|Mary|Robert|Patricia|Michael|Jennifer|David|Linda|William|Elizabeth|Priya|Wei|"
    "Fatima|Mohammed|Olga|Sven|Aisha|Carlos|Yuki|Chloé|Søren|Anaïs|Łukasz|Björn|Ingrid|"
    "Kwame|Sofia|Mateo|Hannah|Noah|Emma|Liam|Ava|Lucas|Mia|Arjun|Mei|Omar|Leila|Dmitri"
)
_LAST_NAMES = _pool(
    "Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Martinez|Chen|Patel|Kim|Müller|"
    "O'Brien|Kowalski|Dubois|Rossi|Tanaka|Okafor|Silva|Nowak|Hernández|Søndergaard|Nguyễn|"
    "Schröder|Ivanova|Andersson|Moreau|Fischer|Yamamoto|Singh|Haddad|Costa|Walsh|Becker"
)
# Always present (users/owners 2-4), so every data set has non-ASCII people in it.
_SPECIAL_PEOPLE = (("José", "Núñez"), ("Zoë", "Ångström"), ("李", "伟"))
_TITLES = _pool(
    "Account Executive|Senior Account Executive|Enterprise Account Executive|"
    "Sales Development Representative|Sales Manager|Regional Sales Director|"
    "Solutions Engineer|Customer Success Manager|VP Sales"
)
_CO_HEAD = _pool(
    "Acme|Globex|Initech|Umbrella|Stark|Wayne|Wonka|Hooli|Vandelay|Soylent|Cyberdyne|"
    "Tyrell|Massive Dynamic|Aperture|Oscorp|Pied Piper|Monarch|Dunder Mifflin|Bluth|"
    "Sterling Cooper|Nakatomi|Oceanic|Blue Sun|Weyland|Virtucon|Contoso|Fabrikam|Northwind|"
    "Tailspin|Litware|Adventure Works|Wingtip|Alpine|Coho|Fourth Coffee|Proseware|Lucerne|"
    "Woodgrove|Trey|Humongous|Blue Yonder|Wide World|Relecloud|Summit|Redwood|Granite|"
    "Harbor|Meridian|Pinnacle|Evergreen"
)
_CO_MID = (
    "",
    "",
    "",
    *_pool(
        "Global|Systems|Analytics|Logistics|Health|Energy|Financial|Labs|Software|Foods|"
        "Networks|Robotics|Media|Capital|Industries|Bio|Cloud|Retail|Manufacturing"
    ),
)
_CO_TAIL = (
    "",
    "",
    "",
    *_pool("Inc.|Inc.|LLC|Corp.|Ltd|GmbH|AG|S.A.|B.V.|plc|Pty Ltd|K.K.|Oy|AB"),
)
_UNICODE_COMPANIES = _pool(
    "Müller & Söhne GmbH|Société Générale d'Équipement SA|Ørsted Vind A/S|"
    "Łódź Logistyka Sp. z o.o.|株式会社さくら技研|北京云数科技有限公司|"
    "Café Olé Holdings 🍷|Škoda Díly s.r.o.|İstanbul Tekstil A.Ş.|"
    "Ελληνικά Δίκτυα ΑΕ|Российские Системы ООО|Δέλτα Analytics|"  # noqa: RUF001
    "Smörgås Chef AB|Núñez y Hermanos S.L.|Zürich Präzision AG|São Paulo Comércio Ltda|"
    "Hà Nội Công Nghệ JSC|🚀 Rocket Ventures|서울 데이터 주식회사|Þór Fiskvinnsla ehf."
)


def _long_name(words: Sequence[str], length: int) -> str:
    out = "The"
    i = 0
    while len(out) < length:
        out += " " + words[i % len(words)]
        i += 1
    return out[:length].rstrip() + "." if len(out) > length else out


_LONG_COMPANIES = (
    _long_name(
        _pool(
            "International|Consolidated|Amalgamated|Holdings|and|Subsidiaries|of|North|"
            "America|Europe|Asia-Pacific|Group"
        ),
        200,
    ),
    _long_name(
        _pool(
            "Internationale|Gesellschaft|für|Präzisionsmaschinenbau|und|Anlagentechnik|"
            "mit|beschränkter|Haftung|Zweigniederlassung"
        ),
        240,
    ),
    _long_name(
        _pool(
            "Very|Long|Legal|Entity|Name|Limited|Partnership|Incorporated|Worldwide|"
            "Operations|Division"
        ),
        254,
    ),
)
_SF_INDUSTRIES = _pool(
    "Agriculture|Apparel|Banking|Biotechnology|Chemicals|Communications|Construction|"
    "Consulting|Education|Electronics|Energy|Engineering|Entertainment|Finance|"
    "Food & Beverage|Government|Healthcare|Hospitality|Insurance|Machinery|Manufacturing|"
    "Media|Not For Profit|Retail|Shipping|Technology|Telecommunications|Transportation|"
    "Utilities|Other"
)
_HS_INDUSTRIES = _pool(
    "COMPUTER_SOFTWARE|FINANCIAL_SERVICES|HOSPITAL_HEALTH_CARE|RETAIL|BANKING|"
    "INFORMATION_TECHNOLOGY_AND_SERVICES|MARKETING_AND_ADVERTISING|INSURANCE|"
    "TELECOMMUNICATIONS|EDUCATION_MANAGEMENT|MACHINERY|LOGISTICS_AND_SUPPLY_CHAIN|"
    "CONSTRUCTION|FOOD_PRODUCTION|AUTOMOTIVE|PHARMACEUTICALS|UTILITIES|"
    "MANAGEMENT_CONSULTING"
)
_PRODUCTS = _pool(
    "Platform|Enterprise License|Analytics Add-on|Expansion|Renewal|Pilot|"
    "Professional Services|Seat Upgrade|Data Migration|Premium Support|Multi-year|New Logo|"
    "Cross-sell|Security Bundle|Onboarding Package"
)
_EMOJI = ("🚀", "🔥", "💰", "✅", "⭐", "🤝", "📈", "⚠️")
_NEXT_STEPS = (
    "Send revised proposal",
    "Schedule technical deep-dive with IT",
    "Follow up with CFO on budget",
    "Security questionnaire due Friday",
    "Legal review of MSA",
    "Demo for the operations team",
    "Intro call with economic buyer",
    "Waiting on PO",
    "Confirm pricing tiers",
    "Book onsite workshop",
    "Reference call with existing customer",
    "Get procurement contact",
    "Send ROI calculator",
    "Kick off 30-day trial",
    "Check in with champion on timeline",
    "Pricing sign-off from VP",
    "Call back next week",
    "Mutual action plan review",
    "Send order form",
    "Redlines back from legal",
    "Exec sponsor meeting",
    "Re-engage after budget freeze",
    "Update quote with 3-year term",
)
_LONG_NEXT_STEPS_SF = tuple(
    (s * 20)[:255]
    for s in (
        "Follow up with the whole buying committee, chase legal on the MSA redlines, confirm "
        "the security review, then book the exec sponsor call. ",
        "Réunion avec le DAF — envoyer la proposition révisée ✅ puis relancer l'équipe achats. ",
    )
)
_LONG_NEXT_STEPS_HS = tuple(s[:255] * 12 for s in _LONG_NEXT_STEPS_SF)
_DESCRIPTIONS = (
    "Inbound from webinar; evaluating us against two competitors.",
    "Expansion into the EMEA business unit.",
    "Replacing a homegrown spreadsheet process.",
    "Champion moved over from an existing customer.",
    "Procurement-led RFP; scoring due end of quarter.",
    "Multi-year deal, needs security and legal review.",
    "Land deal for a single team, expansion potential across the org.",
    "Renewal with upsell on premium support.",
    "Pilot first, then a company-wide rollout if metrics are hit.",
    "Customer consolidating vendors; price is the main objection.",
)
_LONG_DESCRIPTIONS = (
    "Call notes: discussed integration scope, SSO, data residency (EU), and rollout plan. "
    "Next: security questionnaire, legal redlines, pricing approval. " * 40,
    "Meeting notes 📝 — stakeholders: CFO, VP Ops, IT security. Pain: manual reconciliation "
    "costs ~€40k/month. Criteria: SOC 2, SSO, API access, 99.9 % uptime. ✅ Demo went well. " * 90,
    "Historique: 첫 미팅 완료. 予算は来期に確定予定。Следующий шаг — пилот. " * 120,
)
_BUYERS = tuple(
    f"{f} {ln} ({t})"
    for f, ln, t in zip(
        _FIRST_NAMES * 3,
        _LAST_NAMES[7:] + _LAST_NAMES * 3,
        ("CFO", "CIO", "COO", "VP Finance", "VP Operations", "CTO", "Head of IT", "CEO") * 15,
        strict=False,
    )
)
_CHAMPIONS = tuple(
    f"{f} {ln}" for f, ln in zip(_FIRST_NAMES[5:] + _FIRST_NAMES, _LAST_NAMES * 2, strict=False)
)
_CRITERIA = (
    "SSO, SOC 2 Type II, API access",
    "Total cost over 3 years",
    "Time to value under 90 days",
    "Integration with Salesforce and NetSuite",
    "Data residency in the EU",
    "Ease of use for field reps",
    "Vendor stability and references",
)
_PROCESS = (
    "Team lead -> VP Ops -> CFO sign-off; legal review in parallel",
    "Evaluation committee scores vendors, procurement negotiates, CEO approves",
    "IT security review, then budget holder approval",
    "Board approval needed above $100k",
    "Single decision maker, PO within two weeks of approval",
)
_METRICS = (
    "Reduce churn by 15 %",
    "Cut reporting time from 3 days to 2 hours",
    "Increase win rate by 5 points",
    "Save $40k/month in manual reconciliation",
    "Onboard new reps in 2 weeks instead of 6",
    "Improve forecast accuracy to +/-5 %",
)
_PAINS = (
    "Manual spreadsheet reconciliation",
    "No visibility into pipeline health",
    "Losing deals to slow quoting",
    "Compliance risk from shadow IT",
    "Churn from poor onboarding",
    "Forecast misses two quarters in a row",
)
_TIMELINES = (
    "This quarter",
    "Next quarter",
    "Within 90 days",
    "End of fiscal year",
    "Before budget cycle closes",
    "H2",
    "Q1 next year",
    "ASAP",
)
_LEAD_SOURCES = _pool(
    "Web|Phone Inquiry|Partner Referral|Purchased List|Other|Advertisement|"
    "Employee Referral|External Referral|Trade Show|Word of mouth"
)
_CURRENCIES = ("USD", "EUR", "GBP", "JPY")
_CURRENCY_CUM = (0.85, 0.93, 0.98, 1.0)
_PUSH_CUM = (0.55, 0.80, 0.89, 0.94, 0.97, 0.99, 1.0)  # 0..6 close-date pushes
_AMOUNT_CHANGE_CUM = (0.70, 0.90, 0.97, 1.0)  # 0..3 amount changes
_SF_BAD_PROBABILITIES = (5.0, 25.0, 35.0, 40.0, 80.0, 95.0, 100.0)  # no stage has these
_HS_FORECAST = ("PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMIT")


# ---- small helpers ---------------------------------------------------------------------------
def _cum(weights: Sequence[float]) -> tuple[float, ...]:
    total = float(sum(weights))
    acc = 0.0
    out = []
    for w in weights:
        acc += w
        out.append(acc / total)
    out[-1] = 1.0
    return tuple(out)


def _ascii(text: str) -> str:
    """Lower-case ASCII letters and digits of `text` (accents dropped), for emails and domains."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _num(x: float) -> str:
    """HubSpot's number wire form: `12500` for whole numbers, `12500.5` otherwise."""
    i = int(x)
    return str(i) if i == x else repr(x)


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUF = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _id_seq(prefix: str, start: int = 1) -> Iterator[str]:
    """`make_id(prefix, n)` for n = start, start+1, ...; the same ids, without per-id arithmetic.

    For n < 62**5 the first 10 characters and the first two suffix characters are fixed; the last
    five characters are three "block" digits and two "low" digits, each with their upper-case bits
    for the third suffix character.
    """
    limit = 62**5
    if start < limit:
        probe = make_id(prefix, 0)
        head, s12 = probe[:10], probe[15:17]
        lows = [
            (
                _B62[k // 62] + _B62[k % 62],
                (_B62[k // 62].isupper() << 3) | (_B62[k % 62].isupper() << 4),
            )
            for k in range(62 * 62)
        ]
        tails = [[lo + s12 + _SUF[hb | lb] for lo, lb in lows] for hb in range(8)]
        block, low = divmod(start, 62 * 62)
        while block < 62**3:
            hi = _B62[block // 3844] + _B62[block // 62 % 62] + _B62[block % 62]
            hb = sum(1 << i for i, ch in enumerate(hi) if ch.isupper())
            pre = head + hi
            for tail in tails[hb][low:]:
                yield pre + tail
            block += 1
            low = 0
        start = limit
    n = start
    while True:
        yield make_id(prefix, n)
        n += 1


@cache
def _time_of_day(suffix: str) -> tuple[str, ...]:
    """`THH:MM:SS` + suffix for every second of a day, indexed by the second."""
    return tuple(
        f"T{h:02d}:{m:02d}:{s:02d}{suffix}" for h in range(24) for m in range(60) for s in range(60)
    )


class _Time:
    """Relative whole-second clock: t = seconds since midnight `_BACK_DAYS` days before now."""

    def __init__(self, now: datetime) -> None:
        now_epoch = math.floor(now.timestamp())
        self.base_epoch = (now_epoch // _DAY - _BACK_DAYS) * _DAY
        self.base = datetime.fromtimestamp(self.base_epoch, UTC)
        self.now_t = now_epoch - self.base_epoch
        self.now_day = self.now_t // _DAY
        first = self.base.date()
        self.days: list[str] = [
            date.fromordinal(first.toordinal() + d).isoformat()
            for d in range(_BACK_DAYS + _AHEAD_DAYS)
        ]
        self.hs_days: list[str] = [d + "T00:00:00.000Z" for d in self.days]
        self.sf_tod = _time_of_day(".000+0000")
        self.hs_tod = _time_of_day(".000Z")

    def sf(self, t: int) -> str:
        return self.days[t // _DAY] + self.sf_tod[t % _DAY]

    def hs(self, t: int) -> str:
        return self.days[t // _DAY] + self.hs_tod[t % _DAY]

    def dt(self, t: int) -> datetime:
        return self.base + timedelta(seconds=t)


class _Shape:
    """A pipeline's statistical shape: open-stage count and outcome/stage distributions.

    Stage indexes: 0..k-1 the open stages in order, k closed won, k+1 closed lost.
    """

    __slots__ = ("fill", "k", "lost_cum", "open_cum", "p_open", "p_won")

    def __init__(
        self,
        k: int,
        p_open: float,
        p_won: float,
        open_weights: Sequence[float],
        lost_weights: Sequence[float],
    ) -> None:
        self.k = k
        self.p_open = p_open
        self.p_won = p_won
        self.open_cum = _cum(open_weights)
        self.lost_cum = _cum(lost_weights)
        # share of qualification fields filled, by highest open stage reached (closed won: 1.0)
        self.fill = (*(0.15 + 0.8 * i / max(1, k - 1) for i in range(k)), 1.0)


_Plan = tuple[
    int, int, int, int, int, list[tuple[int, int, Any]], int, float | None, int, int | None, int
]


def _draw_next_step(
    rnd: Callable[[], float], is_open: bool, long_pool: Sequence[str]
) -> str | None:
    """A next step: often missing or blank on open deals (dirty data), sometimes very long."""
    if not is_open:
        return None if rnd() < 0.4 else _NEXT_STEPS[int(rnd() * len(_NEXT_STEPS))]
    r = rnd()
    if r < P_NEXT_STEP_NONE:
        return None
    if r < P_NEXT_STEP_NONE + P_NEXT_STEP_EMPTY:
        return ""
    if r < P_NEXT_STEP_NONE + P_NEXT_STEP_EMPTY + P_NEXT_STEP_LONG:
        return long_pool[int(rnd() * len(long_pool))]
    return _NEXT_STEPS[int(rnd() * len(_NEXT_STEPS))]


def _draw_description(rnd: Callable[[], float]) -> str | None:
    """A description: usually none, sometimes a line, rarely thousands of characters."""
    r = rnd()
    if r < P_LONG_DESCRIPTION:
        return _LONG_DESCRIPTIONS[int(rnd() * len(_LONG_DESCRIPTIONS))]
    if r < 0.45:
        return _DESCRIPTIONS[int(rnd() * len(_DESCRIPTIONS))]
    return None


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


def _plan(
    rnd: Callable[[], float], gauss: Callable[[float, float], float], shape: _Shape, now_t: int
) -> _Plan:
    """One deal's life: outcome, creation time, first stage, time-ordered changes and activity.

    Returns (outcome, reached, start_stage, created, last_stage_t, events, close0, amount0,
    currency, activity_t, bad_probability) where events are (t, kind, value) sorted by time:
    _EV_STAGE stage index, _EV_CLOSE_DATE new close day, _EV_AMOUNT new amount, _EV_CLOSE closing
    stage index (the close date becomes the day of t).
    """
    k = shape.k
    u = rnd()
    if u < shape.p_open:
        outcome = _OPEN
        target = bisect(shape.open_cum, rnd())
    elif u < shape.p_open + shape.p_won:
        outcome = _WON
        target = k - 1 if k < 2 or rnd() < 0.9 else k - 2
    else:
        outcome = _LOST
        target = bisect(shape.lost_cum, rnd())
    start = 1 if target >= 1 and rnd() < 0.25 else 0
    path: list[int] = []
    cur, regressed = start, 0
    while cur < target:
        r = rnd()
        if r < 0.05 and cur > start and regressed < 2:
            cur -= 1
            regressed += 1
        elif r < 0.13 and cur + 2 <= target:
            cur += 2
        else:
            cur += 1
        path.append(cur)

    # timing
    if outcome == _OPEN:
        u = rnd()
        created = now_t - 3600 - int(_MAX_AGE * u * u * u)
        upper = now_t - 1
        span = max(2, int((now_t - created) * math.sqrt(rnd())))
        times = sorted([created + 1 + int((span - 1) * rnd()) for _ in path])
        end = created
    else:
        cycle = int(_DAY * min(400.0, max(2.0, math.exp(gauss(4.1, 0.6)))))
        created = now_t - cycle - int((_MAX_AGE - cycle) * rnd())  # cycle <= 400 days
        end = created + cycle
        upper = end - 1
        times = sorted([created + 1 + int((cycle - 2) * rnd()) for _ in path])
        path.append(k if outcome == _WON else k + 1)
        times.append(end)
    events: list[tuple[int, int, Any]] = [
        (t, _EV_STAGE, s) for t, s in zip(times, path, strict=True)
    ]
    if outcome != _OPEN:
        events[-1] = (end, _EV_CLOSE, path[-1])
    last_stage_t = times[-1] if times else created

    # close dates: the final (planned) one, then earlier ones backwards, one per push
    created_day = created // _DAY
    now_day = now_t // _DAY
    if outcome == _OPEN:
        if rnd() < P_PAST_CLOSE:
            final = now_day - 1 - int(120 * rnd() * rnd())
        else:
            final = now_day + int(180 * rnd() * rnd())
    else:
        final = max(created_day + 1, end // _DAY - 20 + int(50 * rnd()))
    dates = [final]
    for _ in range(bisect(_PUSH_CUM, rnd())):
        prev = dates[-1] - 7 - int(50 * rnd())
        if prev <= created_day:
            break
        dates.append(prev)
    dates.reverse()
    close0 = dates[0]
    if len(dates) > 1:
        lo, hi = created + 1, upper
        push_times = []
        for d in dates[:-1]:  # pushed around the time the old date came due
            t = d * _DAY + int((13 * rnd() - 10) * _DAY)
            if t < lo:
                t = lo + int((hi - lo) * 0.1 * rnd())
            elif t > hi:
                t = hi - int((hi - lo) * 0.2 * rnd())
            push_times.append(t)
        push_times.sort()
        events += [(t, _EV_CLOSE_DATE, d) for t, d in zip(push_times, dates[1:], strict=True)]

    # amount and currency
    r = rnd()
    c = bisect(_CURRENCY_CUM, rnd())
    scale = 150.0 if c == 3 else 1.0
    amount0: float | None
    p_missing = P_WON_NO_AMOUNT if outcome == _WON else P_MISSING_AMOUNT
    if r < p_missing:
        amount0 = None
    else:
        base = max(500.0, math.exp(gauss(10.46, 0.85))) * scale
        if r < p_missing + P_ABSURD_AMOUNT:
            v = rnd()
            amount0 = 0.01 if v < 0.34 else 1.0e10 if v < 0.67 else -round(base, -2)
        else:
            amount0 = round(base, 2) if rnd() < 0.1 else round(base, -2)
            changes = bisect(_AMOUNT_CHANGE_CUM, rnd())
            if changes:
                span_a = upper - created
                amt = amount0
                for t in sorted([created + 1 + int(span_a * rnd()) for _ in range(changes)]):
                    new = round(amt * (0.6 + 0.8 * rnd()), -2)
                    if new == amt or new <= 0:
                        new = amt + 100.0 * scale
                    events.append((t, _EV_AMOUNT, new))
                    amt = new
    if len(events) > 1:
        events.sort()

    # last activity
    age = now_t - created
    r = rnd()
    act: int | None
    if outcome == _OPEN:
        if r < 0.07:
            act = None
        elif r < 0.27 and age > 31 * _DAY:  # stale: no touch for more than 30 days
            act = now_t - 31 * _DAY - int((age - 31 * _DAY) * rnd())
        else:
            v = rnd()
            act = now_t - int(min(30 * _DAY, age) * v * v)
    else:
        act = None if r < 0.05 else max(created, end - int(10 * _DAY * rnd()))
    bad_prob = 1 if outcome == _OPEN and rnd() < P_BAD_PROBABILITY else 0
    return (
        outcome,
        target,
        start,
        created,
        last_stage_t,
        events,
        close0,
        amount0,
        c,
        act,
        bad_prob,
    )


def _people(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """`count` (first, last) names, including the fixed unicode ones at positions 1..3."""
    out = []
    for i in range(count):
        if 1 <= i <= len(_SPECIAL_PEOPLE):
            out.append(_SPECIAL_PEOPLE[i - 1])
        else:
            out.append((rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)))
    return out


def _emails(people: Sequence[tuple[str, str]], domain: str) -> list[str]:
    used: set[str] = set()
    out = []
    for i, (first, last) in enumerate(people):
        local = ".".join(p for p in (_ascii(first), _ascii(last)) if p) or f"user{i + 1}"
        email = f"{local}@{domain}"
        n = 2
        while email in used:
            email = f"{local}{n}@{domain}"
            n += 1
        used.add(email)
        out.append(email)
    return out


def _company_name(rnd: Callable[[], float]) -> str:
    r = rnd()
    if r < P_LONG_ACCOUNT:
        return _LONG_COMPANIES[int(rnd() * len(_LONG_COMPANIES))]
    if r < P_LONG_ACCOUNT + P_UNICODE_ACCOUNT:
        return _UNICODE_COMPANIES[int(rnd() * len(_UNICODE_COMPANIES))]
    parts = (
        _CO_HEAD[int(rnd() * len(_CO_HEAD))],
        _CO_MID[int(rnd() * len(_CO_MID))],
        _CO_TAIL[int(rnd() * len(_CO_TAIL))],
    )
    return " ".join(p for p in parts if p)


def _count_people(n: int) -> int:
    return min(400, max(5, round(n / 30)))


def _count_companies(n: int) -> int:
    return max(3, round(n / 4))


# ---- entry point ----------------------------------------------------------------------------
def generate(opportunities: int, seed: int = 7, now: datetime | None = None) -> GeneratedData:
    """Generate `opportunities` Salesforce Opportunities and as many HubSpot deals, with owners,
    accounts/companies, history and associations.

    Deterministic in (opportunities, seed, now). `now` defaults to the current UTC time truncated
    to the hour; pass it explicitly for byte-identical output. All timestamps are <= now.
    """
    if opportunities < 0:
        raise ValueError("opportunities must be >= 0")
    if now is None:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    tm = _Time(now)
    data = GeneratedData()
    # The output is millions of small acyclic containers; cyclic GC passes over them would only
    # cost time (about a third of the total at 100k), so collection waits until we are done.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _salesforce(data, opportunities, random.Random(f"crmsync-sandbox:{seed}:salesforce"), tm)
        _hubspot(data, opportunities, random.Random(f"crmsync-sandbox:{seed}:hubspot"), tm)
    finally:
        if gc_was_enabled:
            gc.enable()
    return data


# ---- Salesforce -----------------------------------------------------------------------------
_SF_OPEN = [s for s in OPPORTUNITY_STAGES if not s[3]]
_SF_ORDER = (
    *_SF_OPEN,
    next(s for s in OPPORTUNITY_STAGES if s[4]),
    next(s for s in OPPORTUNITY_STAGES if s[3] and not s[4]),
)
_SF_SHAPE = _Shape(
    len(_SF_OPEN), 0.65, 0.14, (22, 18, 15, 12, 10, 9, 8, 6), (24, 20, 16, 12, 10, 8, 6, 4)
)


def _salesforce(data: GeneratedData, n: int, rng: random.Random, tm: _Time) -> None:
    rnd = rng.random
    now_t, now_day, days, sf = tm.now_t, tm.now_day, tm.days, tm.sf

    # users
    user_ids = _id_seq("005")
    n_users = _count_people(n)
    people = _people(rng, n_users)
    emails = _emails(people, "crmsync-sandbox.example")
    n_inactive = max(1, round(n_users / 10))
    inactive_at = set(rng.sample(range(len(_SPECIAL_PEOPLE) + 1, n_users), n_inactive))
    users: list[dict[str, Any]] = []
    for i, (first, last) in enumerate(people):
        created = now_t - int((760 + 900 * rnd()) * _DAY)
        modified = created + int((now_t - created) * rnd())
        users.append(
            {
                "Id": next(user_ids),
                "Username": emails[i],
                "FirstName": first,
                "LastName": last,
                "Name": f"{first} {last}",
                "Email": emails[i],
                "IsActive": i not in inactive_at,
                "Title": _TITLES[int(rnd() * len(_TITLES))],
                "CreatedDate": sf(created),
                "LastModifiedDate": sf(modified),
                "SystemModstamp": sf(modified),
            }
        )
    all_ids = [u["Id"] for u in users]
    active = [u["Id"] for u in users if u["IsActive"]]
    inactive = [u["Id"] for u in users if not u["IsActive"]]
    n_all, n_active, n_inactive = len(all_ids), len(active), len(inactive)

    # accounts
    account_ids = _id_seq("001")
    n_acc = _count_companies(n)
    accounts: list[dict[str, Any]] = []
    acc_names: list[str] = []
    for _ in range(n_acc):
        name = _company_name(rnd)
        acc_names.append(name)
        created = now_t - int((740 + 800 * rnd()) * _DAY)
        modified = created + int((now_t - created) * rnd())
        who = active[int(rnd() * n_active)]
        stamp = sf(modified)
        accounts.append(
            {
                "Id": next(account_ids),
                "IsDeleted": False,
                "Name": name,
                "Industry": None
                if rnd() < 0.08
                else _SF_INDUSTRIES[int(rnd() * len(_SF_INDUSTRIES))],
                "AnnualRevenue": None if rnd() < 0.2 else round(math.exp(rng.gauss(17.0, 1.6)), -3),
                "NumberOfEmployees": None
                if rnd() < 0.15
                else int(math.exp(rng.gauss(5.5, 1.7))) + 1,
                "OwnerId": who,
                "CreatedDate": sf(created),
                "CreatedById": who,
                "LastModifiedDate": stamp,
                "LastModifiedById": who,
                "SystemModstamp": stamp,
            }
        )
    acc_id_list = [a["Id"] for a in accounts]

    # opportunities and their history
    stage_names = [s[0] for s in _SF_ORDER]
    stage_prob = [float(s[1]) for s in _SF_ORDER]
    stage_fc = [s[2] for s in _SF_ORDER]
    stage_closed = [s[3] for s in _SF_ORDER]
    stage_won = [s[4] for s in _SF_ORDER]
    types = ("New Business", "Existing Customer - Upgrade", "Existing Customer - Renewal")
    type_cum = (0.6, 0.8, 1.0)
    shape, fill = _SF_SHAPE, _SF_SHAPE.fill
    gauss = rng.gauss
    opp_ids = _id_seq("006")
    hist_ids = _id_seq("008")
    opps: list[dict[str, Any]] = []
    hist: list[dict[str, Any]] = []
    add_opp, add_hist = opps.append, hist.append
    n_buyers, n_champ, n_crit, n_proc = len(_BUYERS), len(_CHAMPIONS), len(_CRITERIA), len(_PROCESS)
    n_metr, n_pain, n_time = len(_METRICS), len(_PAINS), len(_TIMELINES)
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
        ) = _plan(rnd, gauss, shape, now_t)
        oid = next(opp_ids)
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
            if kind in (_EV_STAGE, _EV_CLOSE):
                stage = v
                prob = bad_p if bad_prob and t == last_stage_t else stage_prob[v]
                last_stage_s = stamp
                if kind == _EV_CLOSE:
                    close = t // _DAY
            elif kind == _EV_CLOSE_DATE:
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
        is_open = outcome == _OPEN
        next_step = _draw_next_step(rnd, is_open, _LONG_NEXT_STEPS_SF)
        description = _draw_description(rnd)
        name = f"{acc_names[ai][:90]} - {_PRODUCTS[int(rnd() * len(_PRODUCTS))]}"
        if rnd() < P_EMOJI_NAME:
            name = _EMOJI[int(rnd() * len(_EMOJI))] + " " + name
        if len(name) > 120:
            name = name[:120]
        r = rnd()
        diligence = 0.45 if r < 0.2 else 0.85 if r < 0.6 else 0.97
        p = (1.0 if outcome == _WON else fill[reached]) * diligence
        q = [rnd() for _ in range(8)]
        has_open = is_open and rnd() < 0.5
        lm = last_t if rnd() < 0.3 else last_t + int((now_t - last_t) * 0.5 * rnd())
        sm = lm if rnd() < 0.8 else lm + int((now_t - lm) * rnd())
        lm_s = sf(lm)
        act_day = None if act is None else act // _DAY
        add_opp(
            {
                "Id": oid,
                "IsDeleted": False,
                "AccountId": None if rnd() < P_NO_ACCOUNT else acc_id_list[ai],
                "Name": name,
                "Description": description,
                "StageName": stage_names[stage],
                "Amount": amount,
                "Probability": prob,
                "ExpectedRevenue": None if amount is None else round(amount * prob / 100, 2),
                "CloseDate": days[close],
                "Type": None if rnd() < P_NO_TYPE else types[bisect(type_cum, rnd())],
                "NextStep": next_step,
                "LeadSource": None if rnd() < 0.15 else _LEAD_SOURCES[int(rnd() * 10)],
                "IsClosed": stage_closed[stage],
                "IsWon": stage_won[stage],
                "ForecastCategory": stage_fc[stage],
                "ForecastCategoryName": stage_fc[stage],
                "CurrencyIsoCode": _CURRENCIES[cur],
                "OwnerId": owner,
                "LastActivityDate": None if act_day is None else days[act_day],
                "LastStageChangeDate": last_stage_s,
                "HasOpenActivity": has_open,
                "HasOverdueTask": has_open and rnd() < 0.2,
                "Economic_Buyer__c": _BUYERS[int(q[0] / p * n_buyers)] if q[0] < p else None,
                "Decision_Criteria__c": _CRITERIA[int(q[1] / p * n_crit)] if q[1] < p else None,
                "Decision_Process__c": _PROCESS[int(q[2] / p * n_proc)] if q[2] < p else None,
                "Champion__c": _CHAMPIONS[int(q[3] / p * n_champ)] if q[3] < p else None,
                "Metrics__c": _METRICS[int(q[4] / p * n_metr)] if q[4] < p else None,
                "Identified_Pain__c": _PAINS[int(q[5] / p * n_pain)] if q[5] < p else None,
                "Budget_Confirmed__c": q[6] < p,
                "Decision_Timeline__c": _TIMELINES[int(q[7] / p * n_time)] if q[7] < p else None,
                "Days_Since_Last_Touch__c": None if act_day is None else float(now_day - act_day),
                "CRMSync_Flags__c": None,
                "Needs_Review__c": False,
                "CreatedDate": created_s,
                "CreatedById": owner if rnd() < 0.7 else all_ids[int(rnd() * n_all)],
                "LastModifiedDate": lm_s,
                "LastModifiedById": owner if rnd() < 0.6 else all_ids[int(rnd() * n_all)],
                "SystemModstamp": lm_s if sm == lm else sf(sm),
            }
        )
    data.salesforce = {
        "User": users,
        "Account": accounts,
        "Opportunity": opps,
        "OpportunityHistory": hist,
        "Task": [],
    }


# ---- HubSpot --------------------------------------------------------------------------------
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


def _hubspot(data: GeneratedData, n: int, rng: random.Random, tm: _Time) -> None:
    rnd = rng.random
    now_t, hs, dtm, hs_days = tm.now_t, tm.hs, tm.dt, tm.hs_days

    # owners
    n_owners = _count_people(n)
    people = _people(rng, n_owners)
    emails = _emails(people, "crmsync-portal.example")
    archived_at = set(
        rng.sample(range(len(_SPECIAL_PEOPLE) + 1, n_owners), max(1, round(n_owners / 10)))
    )
    owners: list[HsOwner] = []
    for i, (first, last) in enumerate(people):
        created = now_t - int((760 + 900 * rnd()) * _DAY)
        owners.append(
            HsOwner(
                id=str(52_550_153 + 9_973 * i),
                email=emails[i],
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
    n_comp = _count_companies(n)
    companies: list[HsRecord] = []
    comp_names: list[str] = []
    for i in range(n_comp):
        cid = 10_001 + i
        name = _company_name(rnd)
        comp_names.append(name)
        words = name.split()
        stem = "-".join(w for w in (_ascii(x) for x in words[:2]) if w)
        tld = (".com", ".io", ".de", ".co.uk", ".net")[int(rnd() * 5)]
        domain = None if not stem or rnd() < 0.05 else stem + tld
        created = now_t - int((740 + 800 * rnd()) * _DAY)
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
                    else _HS_INDUSTRIES[int(rnd() * len(_HS_INDUSTRIES))],
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
            _Shape(
                k, 0.60, 0.30, [45, 35, 20][:k] + [20] * (k - 3), [40, 35, 25][:k] + [20] * (k - 3)
            )
            if renewal
            else _Shape(
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
    n_buyers, n_champ, n_crit, n_proc = len(_BUYERS), len(_CHAMPIONS), len(_CRITERIA), len(_PROCESS)
    n_metr, n_pain, n_time = len(_METRICS), len(_PAINS), len(_TIMELINES)
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
        ) = _plan(rnd, gauss, shape, now_t)
        is_open = outcome == _OPEN
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
            if kind == _EV_STAGE:
                stage = v
                stage_h.append((stage_ids[v], when))
            elif kind == _EV_CLOSE:
                stage = v
                stage_h.append((stage_ids[v], when))
                if has_close and t // _DAY != close:
                    close = t // _DAY
                    close_s = hs_days[close]
                    close_h.append((close_s, when))
            elif kind == _EV_CLOSE_DATE:
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
        next_step = _draw_next_step(rnd, is_open, _LONG_NEXT_STEPS_HS)
        # set at creation; cleared ("") or replaced later in most deals
        if next_step is None:
            next_h: list[tuple[str | None, datetime]] = []
        elif next_step != "" and rnd() < 0.4:
            next_h = [(next_step, t0)]
        else:
            t = created + 1 + int((now_t - created - 1) * rnd())
            next_h = [(_NEXT_STEPS[int(rnd() * len(_NEXT_STEPS))], t0), (next_step, dtm(t))]
            if t > last_t:
                last_t = t
        if act is not None and act > last_t:
            last_t = act

        description = _draw_description(rnd)
        name = f"{comp_names[ci]} - {_PRODUCTS[int(rnd() * len(_PRODUCTS))]}"
        if rnd() < P_EMOJI_NAME:
            name = _EMOJI[int(rnd() * len(_EMOJI))] + " " + name
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
        p = (1.0 if outcome == _WON else shape.fill[reached]) * diligence
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
                    "deal_currency_code": _CURRENCIES[cur],
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
                    "economic_buyer": _BUYERS[int(q[0] / p * n_buyers)] if q[0] < p else None,
                    "decision_criteria": _CRITERIA[int(q[1] / p * n_crit)] if q[1] < p else None,
                    "decision_process": _PROCESS[int(q[2] / p * n_proc)] if q[2] < p else None,
                    "champion": _CHAMPIONS[int(q[3] / p * n_champ)] if q[3] < p else None,
                    "metrics": _METRICS[int(q[4] / p * n_metr)] if q[4] < p else None,
                    "identified_pain": _PAINS[int(q[5] / p * n_pain)] if q[5] < p else None,
                    "budget_confirmed": (
                        ("true" if q[6] < 0.8 * p else "false") if q[6] < p else None
                    ),
                    "decision_timeline": _TIMELINES[int(q[7] / p * n_time)] if q[7] < p else None,
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
