"""Word lists and text tables of the generated data, and the draws that pick from them.

Names, companies, products, next steps, descriptions and qualification answers, in one place so
both CRMs' generators share them (and their dirty variants: unicode, emoji, very long texts).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Sequence

from crmsync.sandbox.generator.rates import (
    P_LONG_ACCOUNT,
    P_LONG_DESCRIPTION,
    P_NEXT_STEP_EMPTY,
    P_NEXT_STEP_LONG,
    P_NEXT_STEP_NONE,
    P_UNICODE_ACCOUNT,
)


def _pool(text: str) -> tuple[str, ...]:
    """A tuple of the "|"-separated entries of `text`."""
    return tuple(text.split("|"))


FIRST_NAMES = _pool(
    "James|Mary|Robert|Patricia|Michael|Jennifer|David|Linda|William|Elizabeth|Priya|Wei|"
    "Fatima|Mohammed|Olga|Sven|Aisha|Carlos|Yuki|Chloé|Søren|Anaïs|Łukasz|Björn|Ingrid|"
    "Kwame|Sofia|Mateo|Hannah|Noah|Emma|Liam|Ava|Lucas|Mia|Arjun|Mei|Omar|Leila|Dmitri"
)
LAST_NAMES = _pool(
    "Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Martinez|Chen|Patel|Kim|Müller|"
    "O'Brien|Kowalski|Dubois|Rossi|Tanaka|Okafor|Silva|Nowak|Hernández|Søndergaard|Nguyễn|"
    "Schröder|Ivanova|Andersson|Moreau|Fischer|Yamamoto|Singh|Haddad|Costa|Walsh|Becker"
)
# Always present (users/owners 2-4), so every data set has non-ASCII people in it.
SPECIAL_PEOPLE = (("José", "Núñez"), ("Zoë", "Ångström"), ("李", "伟"))
TITLES = _pool(
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
SF_INDUSTRIES = _pool(
    "Agriculture|Apparel|Banking|Biotechnology|Chemicals|Communications|Construction|"
    "Consulting|Education|Electronics|Energy|Engineering|Entertainment|Finance|"
    "Food & Beverage|Government|Healthcare|Hospitality|Insurance|Machinery|Manufacturing|"
    "Media|Not For Profit|Retail|Shipping|Technology|Telecommunications|Transportation|"
    "Utilities|Other"
)
HS_INDUSTRIES = _pool(
    "COMPUTER_SOFTWARE|FINANCIAL_SERVICES|HOSPITAL_HEALTH_CARE|RETAIL|BANKING|"
    "INFORMATION_TECHNOLOGY_AND_SERVICES|MARKETING_AND_ADVERTISING|INSURANCE|"
    "TELECOMMUNICATIONS|EDUCATION_MANAGEMENT|MACHINERY|LOGISTICS_AND_SUPPLY_CHAIN|"
    "CONSTRUCTION|FOOD_PRODUCTION|AUTOMOTIVE|PHARMACEUTICALS|UTILITIES|"
    "MANAGEMENT_CONSULTING"
)
PRODUCTS = _pool(
    "Platform|Enterprise License|Analytics Add-on|Expansion|Renewal|Pilot|"
    "Professional Services|Seat Upgrade|Data Migration|Premium Support|Multi-year|New Logo|"
    "Cross-sell|Security Bundle|Onboarding Package"
)
EMOJI = ("🚀", "🔥", "💰", "✅", "⭐", "🤝", "📈", "⚠️")
NEXT_STEPS = (
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
LONG_NEXT_STEPS_SF = tuple(
    (s * 20)[:255]
    for s in (
        "Follow up with the whole buying committee, chase legal on the MSA redlines, confirm "
        "the security review, then book the exec sponsor call. ",
        "Réunion avec le DAF — envoyer la proposition révisée ✅ puis relancer l'équipe achats. ",
    )
)
LONG_NEXT_STEPS_HS = tuple(s[:255] * 12 for s in LONG_NEXT_STEPS_SF)
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
BUYERS = tuple(
    f"{f} {ln} ({t})"
    for f, ln, t in zip(
        FIRST_NAMES * 3,
        LAST_NAMES[7:] + LAST_NAMES * 3,
        ("CFO", "CIO", "COO", "VP Finance", "VP Operations", "CTO", "Head of IT", "CEO") * 15,
        strict=False,
    )
)
CHAMPIONS = tuple(
    f"{f} {ln}" for f, ln in zip(FIRST_NAMES[5:] + FIRST_NAMES, LAST_NAMES * 2, strict=False)
)
CRITERIA = (
    "SSO, SOC 2 Type II, API access",
    "Total cost over 3 years",
    "Time to value under 90 days",
    "Integration with Salesforce and NetSuite",
    "Data residency in the EU",
    "Ease of use for field reps",
    "Vendor stability and references",
)
PROCESS = (
    "Team lead -> VP Ops -> CFO sign-off; legal review in parallel",
    "Evaluation committee scores vendors, procurement negotiates, CEO approves",
    "IT security review, then budget holder approval",
    "Board approval needed above $100k",
    "Single decision maker, PO within two weeks of approval",
)
METRICS = (
    "Reduce churn by 15 %",
    "Cut reporting time from 3 days to 2 hours",
    "Increase win rate by 5 points",
    "Save $40k/month in manual reconciliation",
    "Onboard new reps in 2 weeks instead of 6",
    "Improve forecast accuracy to +/-5 %",
)
PAINS = (
    "Manual spreadsheet reconciliation",
    "No visibility into pipeline health",
    "Losing deals to slow quoting",
    "Compliance risk from shadow IT",
    "Churn from poor onboarding",
    "Forecast misses two quarters in a row",
)
TIMELINES = (
    "This quarter",
    "Next quarter",
    "Within 90 days",
    "End of fiscal year",
    "Before budget cycle closes",
    "H2",
    "Q1 next year",
    "ASAP",
)
LEAD_SOURCES = _pool(
    "Web|Phone Inquiry|Partner Referral|Purchased List|Other|Advertisement|"
    "Employee Referral|External Referral|Trade Show|Word of mouth"
)


# ---- draws -----------------------------------------------------------------------------------
def ascii_fold(text: str) -> str:
    """Lower-case ASCII letters and digits of `text` (accents dropped), for emails and domains."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def people(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """`count` (first, last) names, including the fixed unicode ones at positions 1..3."""
    out = []
    for i in range(count):
        if 1 <= i <= len(SPECIAL_PEOPLE):
            out.append(SPECIAL_PEOPLE[i - 1])
        else:
            out.append((rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)))
    return out


def emails(people: Sequence[tuple[str, str]], domain: str) -> list[str]:
    used: set[str] = set()
    out = []
    for i, (first, last) in enumerate(people):
        local = ".".join(p for p in (ascii_fold(first), ascii_fold(last)) if p) or f"user{i + 1}"
        email = f"{local}@{domain}"
        n = 2
        while email in used:
            email = f"{local}{n}@{domain}"
            n += 1
        used.add(email)
        out.append(email)
    return out


def company_name(rnd: Callable[[], float]) -> str:
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


def draw_next_step(rnd: Callable[[], float], is_open: bool, long_pool: Sequence[str]) -> str | None:
    """A next step: often missing or blank on open deals (dirty data), sometimes very long."""
    if not is_open:
        return None if rnd() < 0.4 else NEXT_STEPS[int(rnd() * len(NEXT_STEPS))]
    r = rnd()
    if r < P_NEXT_STEP_NONE:
        return None
    if r < P_NEXT_STEP_NONE + P_NEXT_STEP_EMPTY:
        return ""
    if r < P_NEXT_STEP_NONE + P_NEXT_STEP_EMPTY + P_NEXT_STEP_LONG:
        return long_pool[int(rnd() * len(long_pool))]
    return NEXT_STEPS[int(rnd() * len(NEXT_STEPS))]


def draw_description(rnd: Callable[[], float]) -> str | None:
    """A description: usually none, sometimes a line, rarely thousands of characters."""
    r = rnd()
    if r < P_LONG_DESCRIPTION:
        return _LONG_DESCRIPTIONS[int(rnd() * len(_LONG_DESCRIPTIONS))]
    if r < 0.45:
        return _DESCRIPTIONS[int(rnd() * len(_DESCRIPTIONS))]
    return None
