"""Tests for the sandbox's deterministic data generator."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from crmsync.sandbox.clock import hs_datetime, parse_datetime, sf_datetime
from crmsync.sandbox.generated import GeneratedData
from crmsync.sandbox.generator import generate, salesforce_deals
from crmsync.sandbox.hubspot.schema import PIPELINES, PROPERTIES, STAGES
from crmsync.sandbox.salesforce.ids import id_sequence, make_id
from crmsync.sandbox.salesforce.schema import OPPORTUNITY_STAGES, SOBJECTS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date().isoformat()
N = 2000
SF_DT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$")
HS_DT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
HS_NUM = re.compile(r"^-?\d+(\.\d+)?$")
STAGE = {s[0]: s for s in OPPORTUNITY_STAGES}
STR_TYPES = {"id", "reference", "string", "textarea", "picklist", "email", "phone"}
FLOAT_TYPES = {"currency", "percent", "double"}


@pytest.fixture(scope="module")
def data() -> GeneratedData:
    return generate(N, seed=7, now=NOW)


@pytest.fixture(scope="module")
def history_by_opp(data: GeneratedData) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in data.salesforce["OpportunityHistory"]:
        out[row["OpportunityId"]].append(row)
    return out


def _open_opps(data: GeneratedData) -> list[dict[str, Any]]:
    return [o for o in data.salesforce["Opportunity"] if not o["IsClosed"]]


def _open_deals(data: GeneratedData) -> list[Any]:
    return [d for d in data.hubspot["deals"] if d.properties["hs_is_closed"] == "false"]


# ---- determinism and counts -------------------------------------------------------------------
def test_same_seed_and_now_give_identical_output() -> None:
    """The same (n, seed, now) produces equal output, down to every record."""
    assert generate(300, seed=3, now=NOW) == generate(300, seed=3, now=NOW)


def test_other_seed_or_now_gives_different_output() -> None:
    """A different seed, or a different now, changes the data."""
    base = generate(200, seed=3, now=NOW)
    assert generate(200, seed=4, now=NOW) != base
    later = generate(200, seed=3, now=NOW + timedelta(days=1))
    assert later.salesforce["Opportunity"] != base.salesforce["Opportunity"]


def test_default_now_is_the_current_hour() -> None:
    """Without `now`, every timestamp is at or before the current UTC hour."""
    before = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    data = generate(50)
    after = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    latest = max(parse_datetime(o["SystemModstamp"]) for o in data.salesforce["Opportunity"])
    assert latest <= after
    assert latest >= before - timedelta(days=30)
    assert max(d.updated_at for d in data.hubspot["deals"]) <= after


def test_record_counts() -> None:
    """Exactly n opportunities and n deals; users, accounts, companies sized from n."""
    for n in (0, 1, 37, 900):
        d = generate(n, seed=1, now=NOW)
        people = min(400, max(5, round(n / 30)))
        companies = max(3, round(n / 4))
        assert len(d.salesforce["Opportunity"]) == n
        assert len(d.hubspot["deals"]) == n
        assert len(d.salesforce["User"]) == people
        assert len(d.hubspot_owners) == people
        assert len(d.salesforce["Account"]) == companies
        assert len(d.hubspot["companies"]) == companies
        assert len(d.hubspot_associations) == n
        assert len(d.salesforce["OpportunityHistory"]) >= n
        assert d.salesforce["Task"] == []
        assert d.hubspot["tasks"] == []


def test_negative_count_is_rejected() -> None:
    """A negative opportunity count raises ValueError."""
    with pytest.raises(ValueError):
        generate(-1, now=NOW)


def test_id_sequence_matches_make_id() -> None:
    """The fast id sequence yields exactly make_id(prefix, n) for n = 1, 2, 3, ..."""
    seq = id_sequence("006")
    for n in range(1, 12_000):
        assert next(seq) == make_id("006", n)
    for start in (3843, 3844, 62**3 - 1, 62**4 - 3, 62**5 - 2):
        seq = id_sequence("00T", start)
        for n in range(start, start + 5):
            assert next(seq) == make_id("00T", n)


def test_salesforce_deals_stream_the_generated_org() -> None:
    """salesforce_deals yields generate's Opportunities and history, with owner and account."""
    for n, seed in ((0, 1), (1, 2), (700, 3)):
        data = generate(n, seed=seed, now=NOW)
        deals = list(salesforce_deals(n, seed=seed, now=NOW))
        assert [d.opportunity for d in deals] == data.salesforce["Opportunity"]
        assert [r for d in deals for r in d.history] == data.salesforce["OpportunityHistory"]
        users = {u["Id"]: u for u in data.salesforce["User"]}
        accounts = {a["Id"]: a["Name"] for a in data.salesforce["Account"]}
        for d in deals:
            assert d.owner == users[d.opportunity["OwnerId"]]
            account = d.opportunity["AccountId"]
            assert d.account_name == (None if account is None else accounts[account])
            assert all(r["OpportunityId"] == d.opportunity["Id"] for r in d.history)
    with pytest.raises(ValueError):
        next(salesforce_deals(-1, now=NOW))


# ---- Salesforce -------------------------------------------------------------------------------
def test_salesforce_records_have_exactly_the_schema_fields_and_types(data: GeneratedData) -> None:
    """Every sObject dict has the schema's fields in order, with wire types per field type."""
    for name in ("User", "Account", "Opportunity", "OpportunityHistory"):
        obj = SOBJECTS[name.lower()]
        names = [f.name for f in obj.fields]
        records = data.salesforce[name]
        assert records
        for rec in records:
            assert list(rec) == names
            for f in obj.fields:
                v = rec[f.name]
                if v is None:
                    assert f.nillable, (name, f.name)
                    continue
                if f.type in STR_TYPES:
                    assert isinstance(v, str), (name, f.name, v)
                    if f.length:
                        assert len(v) <= f.length, (name, f.name, len(v))
                elif f.type == "boolean":
                    assert isinstance(v, bool), (name, f.name, v)
                elif f.type in FLOAT_TYPES:
                    assert type(v) is float, (name, f.name, v)
                elif f.type == "int":
                    assert type(v) is int, (name, f.name, v)
                elif f.type == "date":
                    assert DATE.match(v), (name, f.name, v)
                elif f.type == "datetime":
                    assert SF_DT.match(v), (name, f.name, v)
                else:
                    raise AssertionError(f"unexpected field type {f.type}")
            if "IsDeleted" in rec:
                assert rec["IsDeleted"] is False


def test_salesforce_datetimes_are_clock_formatted(data: GeneratedData) -> None:
    """Datetime strings round-trip through parse_datetime/sf_datetime unchanged."""
    for rec in data.salesforce["Opportunity"][:300]:
        for key in ("CreatedDate", "LastModifiedDate", "SystemModstamp", "LastStageChangeDate"):
            assert sf_datetime(parse_datetime(rec[key])) == rec[key]


def test_salesforce_ids_unique_prefixed_and_references_resolve(data: GeneratedData) -> None:
    """Ids are unique with the right key prefix, dense from 1, and references point at records."""
    ids: dict[str, set[str]] = {}
    for name in ("User", "Account", "Opportunity", "OpportunityHistory"):
        prefix = SOBJECTS[name.lower()].key_prefix
        got = [r["Id"] for r in data.salesforce[name]]
        assert got == [make_id(prefix, n) for n in range(1, len(got) + 1)]
        ids[name] = set(got)
    users, accounts, opps = ids["User"], ids["Account"], ids["Opportunity"]
    for a in data.salesforce["Account"]:
        assert a["OwnerId"] in users and a["CreatedById"] in users
    for o in data.salesforce["Opportunity"]:
        assert o["OwnerId"] in users
        assert o["AccountId"] is None or o["AccountId"] in accounts
        assert o["CreatedById"] in users and o["LastModifiedById"] in users
    for h in data.salesforce["OpportunityHistory"]:
        assert h["OpportunityId"] in opps and h["CreatedById"] in users


def test_users_names_activity_and_unicode(data: GeneratedData) -> None:
    """User.Name is "First Last", ~10 % are inactive, and unicode names are among them."""
    users = data.salesforce["User"]
    for u in users:
        assert u["Name"] == f"{u['FirstName']} {u['LastName']}"
    inactive = sum(not u["IsActive"] for u in users)
    assert 1 <= inactive <= 0.2 * len(users)
    names = {u["Name"] for u in users}
    assert {"José Núñez", "Zoë Ångström", "李 伟"} <= names
    assert len({u["Username"] for u in users}) == len(users)


def test_opportunity_derived_fields_follow_the_stage(data: GeneratedData) -> None:
    """IsClosed/IsWon/forecast/expected revenue follow StageName; probability mostly does too."""
    opps = data.salesforce["Opportunity"]
    off_default = 0
    for o in opps:
        _name, prob, forecast, closed, won = STAGE[o["StageName"]]
        assert o["IsClosed"] is closed and o["IsWon"] is won
        assert o["ForecastCategory"] == forecast == o["ForecastCategoryName"]
        if o["Probability"] != float(prob):
            off_default += 1
            assert not closed, "only open deals carry a hand-edited probability"
        expected = None if o["Amount"] is None else round(o["Amount"] * o["Probability"] / 100, 2)
        assert o["ExpectedRevenue"] == expected
        assert o["CRMSync_Flags__c"] is None and o["Needs_Review__c"] is False
        if closed:
            assert not o["HasOpenActivity"]
    assert 0 < off_default <= 0.08 * len(opps)


def test_opportunity_timestamps_are_ordered(data: GeneratedData) -> None:
    """SystemModstamp >= LastModifiedDate >= CreatedDate, all <= now, for every sObject."""
    now = sf_datetime(NOW)
    for name in ("User", "Account", "Opportunity"):
        for r in data.salesforce[name]:
            assert r["CreatedDate"] <= r["LastModifiedDate"] <= r["SystemModstamp"] <= now
    for o in data.salesforce["Opportunity"]:
        assert o["CreatedDate"] <= o["LastStageChangeDate"] <= o["LastModifiedDate"]
        if o["LastActivityDate"] is None:
            assert o["Days_Since_Last_Touch__c"] is None
        else:
            assert o["CreatedDate"][:10] <= o["LastActivityDate"] <= TODAY
            days = (NOW.date() - date.fromisoformat(o["LastActivityDate"])).days
            assert o["Days_Since_Last_Touch__c"] == float(days)


def test_history_is_time_ordered_and_ends_at_current_values(
    data: GeneratedData, history_by_opp: dict[str, list[dict[str, Any]]]
) -> None:
    """History starts at creation, is in time order with Prev* chained, and ends at the record."""
    tracked = (
        "StageName",
        "Amount",
        "CloseDate",
        "Probability",
        "ForecastCategory",
        "ExpectedRevenue",
    )
    for o in data.salesforce["Opportunity"]:
        rows = history_by_opp[o["Id"]]
        assert rows[0]["CreatedDate"] == o["CreatedDate"]
        assert rows[0]["PrevAmount"] is None and rows[0]["PrevCloseDate"] is None
        for prev, row in pairwise(rows):
            assert prev["CreatedDate"] <= row["CreatedDate"]
            assert row["PrevAmount"] == prev["Amount"]
            assert row["PrevCloseDate"] == prev["CloseDate"]
        for row in rows:
            assert row["SystemModstamp"] == row["CreatedDate"]
            stage = STAGE[row["StageName"]]
            assert row["ForecastCategory"] == stage[2]
            expected = (
                None
                if row["Amount"] is None
                else round(row["Amount"] * row["Probability"] / 100, 2)
            )
            assert row["ExpectedRevenue"] == expected
        last = rows[-1]
        assert {k: last[k] for k in tracked} == {k: o[k] for k in tracked}
        assert last["CreatedDate"] <= o["LastModifiedDate"] <= o["SystemModstamp"]
        changes = [r["CreatedDate"] for p, r in pairwise(rows) if r["StageName"] != p["StageName"]]
        assert o["LastStageChangeDate"] == (changes[-1] if changes else o["CreatedDate"])


def test_stage_paths_start_early_and_close_at_the_end(
    data: GeneratedData, history_by_opp: dict[str, list[dict[str, Any]]]
) -> None:
    """Deals start in the first two stages; closed ones close last, on their close date."""
    order = [s[0] for s in OPPORTUNITY_STAGES]
    regressions = skips = 0
    for o in data.salesforce["Opportunity"]:
        rows = history_by_opp[o["Id"]]
        assert rows[0]["StageName"] in order[:2]
        stages = [order.index(r["StageName"]) for r in rows]
        for a, b in pairwise(stages):
            if not STAGE[order[b]][3]:
                regressions += b == a - 1
                skips += b == a + 2
        if o["IsClosed"]:
            assert rows[-1]["StageName"] == o["StageName"]
            assert not any(STAGE[r["StageName"]][3] for r in rows[:-1])
            assert o["CloseDate"] == rows[-1]["CreatedDate"][:10]
    assert regressions > 0 and skips > 0


# ---- HubSpot ----------------------------------------------------------------------------------
def test_hubspot_properties_are_complete_strings(data: GeneratedData) -> None:
    """Deal and company properties are exactly the schema's, all str or None, in wire format."""
    for kind in ("deals", "companies"):
        schema = PROPERTIES[kind]
        for rec in data.hubspot[kind]:
            props = rec.properties
            assert set(props) == set(schema)
            for name, value in props.items():
                assert value is None or isinstance(value, str), (kind, name, value)
                if value is None:
                    continue
                ptype = schema[name].type
                if ptype == "number":
                    assert HS_NUM.match(value), (name, value)
                elif ptype == "bool":
                    assert value in ("true", "false"), (name, value)
                elif ptype == "datetime":
                    assert HS_DT.match(value), (name, value)
            assert props["hs_object_id"] == str(rec.id)
            assert props["createdate"] == hs_datetime(rec.created_at)
            assert props["hs_lastmodifieddate"] == hs_datetime(rec.updated_at)
            assert rec.created_at <= rec.updated_at <= NOW
            touched = props.get("notes_last_updated")
            assert touched is None or props["createdate"] <= touched <= props["hs_lastmodifieddate"]
            assert rec.archived is False


def test_hubspot_stage_derived_properties(data: GeneratedData) -> None:
    """Stage ids belong to the deal's pipeline; closed/won/probability follow the stage."""
    by_pipeline = {p.id: {s.id for s in p.stages} for p in PIPELINES}
    deals = data.hubspot["deals"]
    bad_forecast = 0
    forecasts = {"PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMIT"}
    for d in deals:
        p = d.properties
        stage = STAGES[p["dealstage"] or ""]
        assert p["dealstage"] in by_pipeline[p["pipeline"] or ""]
        assert p["hs_is_closed"] == ("true" if stage.is_closed else "false")
        won = stage.is_closed and stage.probability > 0
        assert p["hs_is_closed_won"] == ("true" if won else "false")
        assert float(p["hs_deal_stage_probability"] or "nan") == stage.probability
        fc = p["hs_forecast_category"]
        assert fc is None or fc in forecasts
        if stage.is_closed:
            assert fc in (None, "CLOSED" if won else "OMIT")
        elif fc is not None:
            good = (
                "COMMIT"
                if stage.probability >= 0.85
                else "BEST_CASE"
                if stage.probability >= 0.6
                else "PIPELINE"
            )
            bad_forecast += fc != good
    assert 0 < bad_forecast <= 0.08 * len(deals)
    pipelines = Counter(d.properties["pipeline"] for d in deals)
    assert set(pipelines) == set(by_pipeline)
    assert 0.12 <= pipelines["renewals"] / len(deals) <= 0.28


def test_hubspot_history_ends_at_current_values(data: GeneratedData) -> None:
    """Every history property has a time-ordered list whose last value is the current value."""
    for kind in ("deals", "companies"):
        hist_props = {n for n, p in PROPERTIES[kind].items() if p.history}
        for rec in data.hubspot[kind]:
            assert set(rec.history) == hist_props
            for name, entries in rec.history.items():
                current = rec.properties[name]
                if current is not None:
                    assert entries, (rec.id, name)
                if entries:
                    assert entries[-1][0] == current, (rec.id, name)
                    assert entries[0][1] == rec.created_at
                times = [t for _, t in entries]
                assert times == sorted(times)
                assert all(rec.created_at <= t <= rec.updated_at for t in times)
    changed = Counter(
        name for d in data.hubspot["deals"] for name, e in d.history.items() if len(e) > 1
    )
    assert {"dealstage", "closedate", "amount", "hubspot_owner_id"} <= set(changed)


def test_hubspot_ids_owners_and_associations(data: GeneratedData) -> None:
    """Ids ascend from 10001/1000001, owners are numeric, each deal links to one company."""
    companies = [c.id for c in data.hubspot["companies"]]
    deals = [d.id for d in data.hubspot["deals"]]
    assert companies == list(range(10_001, 10_001 + len(companies)))
    assert deals == list(range(1_000_001, 1_000_001 + len(deals)))
    owners = data.hubspot_owners
    assert len({o.id for o in owners}) == len(owners)
    assert all(o.id.isdigit() and isinstance(o.user_id, int) for o in owners)
    assert 1 <= sum(o.archived for o in owners) <= 0.2 * len(owners)
    assert all(o.created_at <= o.updated_at <= NOW for o in owners)
    owner_ids = {o.id for o in owners}
    for d in data.hubspot["deals"]:
        assert d.properties["hubspot_owner_id"] in owner_ids | {None}
    links = data.hubspot_associations
    assert [a.from_id for a in links] == deals
    assert {(a.from_type, a.to_type) for a in links} == {("deals", "companies")}
    assert {a.to_id for a in links} <= set(companies)


def test_hubspot_datetimes_match_clock_format(data: GeneratedData) -> None:
    """HubSpot datetime properties round-trip through parse_datetime/hs_datetime unchanged."""
    for d in data.hubspot["deals"][:300]:
        for key in ("createdate", "hs_lastmodifieddate", "closedate", "notes_last_updated"):
            value = d.properties[key]
            if value is not None:
                assert hs_datetime(parse_datetime(value)) == value


# ---- shape and dirty data ---------------------------------------------------------------------
def test_pipeline_shape(data: GeneratedData) -> None:
    """About 65 % open, amounts mostly 5k-250k USD, open deals per rep in the 15-45 range."""
    for opps, is_open, amount, currency, owner in (
        (
            data.salesforce["Opportunity"],
            lambda o: not o["IsClosed"],
            lambda o: o["Amount"],
            lambda o: o["CurrencyIsoCode"],
            lambda o: o["OwnerId"],
        ),
        (
            data.hubspot["deals"],
            lambda d: d.properties["hs_is_closed"] == "false",
            lambda d: None if d.properties["amount"] is None else float(d.properties["amount"]),
            lambda d: d.properties["deal_currency_code"],
            lambda d: d.properties["hubspot_owner_id"],
        ),
    ):
        open_ = [o for o in opps if is_open(o)]
        assert 0.55 <= len(open_) / len(opps) <= 0.75
        amounts = [amount(o) for o in opps if amount(o) is not None]
        assert sum(5_000 <= a <= 250_000 for a in amounts) / len(amounts) >= 0.8
        assert Counter(currency(o) for o in opps).most_common(1)[0][0] == "USD"
        per_owner = Counter(owner(o) for o in open_)
        assert 15 <= len(open_) / len(per_owner) <= 45


def test_qualification_fields_fill_with_stage(data: GeneratedData) -> None:
    """Qualification fields are filled more in late stages, yet late stages still miss some."""
    fields = (
        "Economic_Buyer__c",
        "Decision_Criteria__c",
        "Decision_Process__c",
        "Champion__c",
        "Metrics__c",
        "Identified_Pain__c",
        "Decision_Timeline__c",
    )
    opps = data.salesforce["Opportunity"]
    early = [o for o in opps if o["StageName"] in ("Prospecting", "Qualification")]
    late = [o for o in opps if o["StageName"] in ("Proposal/Price Quote", "Negotiation/Review")]

    def fill(rows: list[dict[str, Any]]) -> float:
        return sum(o[f] is not None for o in rows for f in fields) / (len(rows) * len(fields))

    assert fill(early) + 0.3 < fill(late)
    assert any(any(o[f] is None for f in fields) for o in late)


def test_salesforce_dirty_data_present(
    data: GeneratedData, history_by_opp: dict[str, list[dict[str, Any]]]
) -> None:
    """Each documented dirty-data case occurs in the Salesforce data at n=2000."""
    opps = data.salesforce["Opportunity"]
    open_ = _open_opps(data)
    users = {u["Id"]: u for u in data.salesforce["User"]}
    amounts = [o["Amount"] for o in opps if o["Amount"] is not None]
    cases = {
        "missing amount": any(o["Amount"] is None for o in open_),
        "closed won without amount": any(o["IsWon"] and o["Amount"] is None for o in opps),
        "past close date on open deal": any(o["CloseDate"] < TODAY for o in open_),
        "no next step": any(o["NextStep"] is None for o in open_),
        "empty next step": any(o["NextStep"] == "" for o in open_),
        "negative amount": any(a < 0 for a in amounts),
        "absurdly small amount": any(0 < a < 1 for a in amounts),
        "absurdly large amount": any(a >= 1e9 for a in amounts),
        "probability off stage": any(
            o["Probability"] != float(STAGE[o["StageName"]][1]) for o in open_
        ),
        "emoji in name": any(any(ord(c) > 0xFFFF for c in o["Name"]) for o in opps),
        "unicode account name": any(
            any(ord(c) > 127 for c in a["Name"]) for a in data.salesforce["Account"]
        ),
        "very long account name": any(len(a["Name"]) > 200 for a in data.salesforce["Account"]),
        "very long description": any(len(o["Description"] or "") > 2000 for o in opps),
        "next step at max length": any(len(o["NextStep"] or "") == 255 for o in open_),
        "no account": any(o["AccountId"] is None for o in opps),
        "no type": any(o["Type"] is None for o in opps),
        "no activity": any(o["LastActivityDate"] is None for o in open_),
        "stale: no touch in 30 days": any((o["Days_Since_Last_Touch__c"] or 0) > 30 for o in open_),
        "inactive owner on open deal": any(not users[o["OwnerId"]]["IsActive"] for o in open_),
        "close date pushed 3+ times": any(
            sum(
                r["PrevCloseDate"] is not None and r["CloseDate"] > r["PrevCloseDate"]
                for r in history_by_opp[o["Id"]]
            )
            >= 3
            for o in open_
        ),
    }
    assert [k for k, present in cases.items() if not present] == []
    assert sum(o["Amount"] is None for o in opps) / len(opps) < 0.1


def test_hubspot_dirty_data_present(data: GeneratedData) -> None:
    """Each documented dirty-data case occurs in the HubSpot data at n=2000."""
    deals = data.hubspot["deals"]
    open_ = _open_deals(data)
    archived = {o.id for o in data.hubspot_owners if o.archived}
    amounts = [float(d.properties["amount"]) for d in deals if d.properties["amount"]]
    today = hs_datetime(NOW)[:10]
    cases = {
        "missing amount": any(d.properties["amount"] is None for d in open_),
        "closed won without amount": any(
            d.properties["hs_is_closed_won"] == "true" and d.properties["amount"] is None
            for d in deals
        ),
        "past close date on open deal": any(
            (d.properties["closedate"] or "9999")[:10] < today for d in open_
        ),
        "no close date": any(d.properties["closedate"] is None for d in open_),
        "no next step": any(d.properties["hs_next_step"] is None for d in open_),
        "cleared next step": any(d.properties["hs_next_step"] == "" for d in open_),
        "long next step": any(len(d.properties["hs_next_step"] or "") > 1000 for d in open_),
        "negative amount": any(a < 0 for a in amounts),
        "absurd amount": any(a >= 1e9 or 0 < a < 1 for a in amounts),
        "emoji in name": any(
            any(ord(c) > 0xFFFF for c in d.properties["dealname"] or "") for d in deals
        ),
        "unicode company": any(
            any(ord(c) > 127 for c in c_.properties["name"] or "")
            for c_ in data.hubspot["companies"]
        ),
        "very long description": any(len(d.properties["description"] or "") > 2000 for d in deals),
        "no owner": any(d.properties["hubspot_owner_id"] is None for d in deals),
        "archived owner on open deal": any(
            d.properties["hubspot_owner_id"] in archived for d in open_
        ),
        "no activity": any(d.properties["notes_last_updated"] is None for d in open_),
        "no deal type": any(d.properties["dealtype"] is None for d in deals),
    }
    assert [k for k, present in cases.items() if not present] == []


def test_unicode_people_in_both_crms(data: GeneratedData) -> None:
    """Both CRMs have non-ASCII people names (accents and CJK)."""
    owners = {f"{o.first_name} {o.last_name}" for o in data.hubspot_owners}
    assert {"José Núñez", "李 伟"} <= owners
    assert all(o.email.isascii() for o in data.hubspot_owners)
    assert all(u["Username"].isascii() for u in data.salesforce["User"])
