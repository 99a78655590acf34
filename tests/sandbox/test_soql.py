"""The sandbox's SOQL engine: grammar subset, schema checks, evaluation, projection and errors."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cmp_to_key
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.sandbox.salesforce.ids import make_id
from crmsync.sandbox.salesforce.schema import OPPORTUNITY, TASK
from crmsync.sandbox.salesforce.soql import Query, SoqlError, parse

TODAY = date(2026, 11, 20)
API = "59.0"
BASE = f"/services/data/v{API}/sobjects"

U1, U2 = make_id("005", 1), make_id("005", 2)
A1, A2, A_GONE = make_id("001", 1), make_id("001", 2), make_id("001", 99)
# Numbers 36 and 10 give 15-character ids that differ only in the case of their last character.
O1, O2, O3, O4, O5 = (make_id("006", n) for n in (36, 10, 3, 4, 5))

USERS = [
    {
        "Id": U1,
        "IsDeleted": False,
        "Name": "Ada Lovelace",
        "Email": "ada@example.com",
        "IsActive": True,
    },
    {
        "Id": U2,
        "IsDeleted": False,
        "Name": "Bob Stone",
        "Email": "bob@example.com",
        "IsActive": False,
    },
]
ACCOUNTS = [
    {"Id": A1, "IsDeleted": False, "Name": "Acme", "OwnerId": U1, "Industry": "Tech"},
    {"Id": A2, "IsDeleted": False, "Name": "globex", "OwnerId": U2, "Industry": None},
]


def _opp(rid: str, name: str, **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "Id": rid,
        "IsDeleted": False,
        "Name": name,
        "AccountId": None,
        "OwnerId": U1,
        "Amount": None,
        "CloseDate": "2026-11-20",
        "StageName": "Prospecting",
        "IsWon": False,
        "CreatedDate": "2026-11-20T08:15:00.000+0000",
        "NextStep": None,
        "Description": None,
    }
    rec.update(fields)
    return rec


OPPS = [
    _opp(O1, "Alpha Deal", AccountId=A1, Amount=1000.0, NextStep="Call"),
    _opp(
        O2,
        "beta deal",
        AccountId=A2,
        OwnerId=U2,
        Amount=5000.0,
        CloseDate="2026-12-01",
        CreatedDate="2026-11-19T23:59:59.999+0000",
        StageName="Closed Won",
        IsWon=True,
    ),
    _opp(
        O3,
        "Gamma",
        CloseDate="2026-11-19",
        CreatedDate="2026-11-21T00:00:00.000+0000",
        StageName="Closed Lost",
    ),
    _opp(
        O4,
        "delta_50%",
        AccountId=A_GONE,
        OwnerId=U2,
        Amount=250.5,
        CloseDate="2026-10-01",
        CreatedDate="2026-01-01T00:00:00.000+0000",
        StageName="Negotiation/Review",
    ),
    _opp(O5, "Deleted Deal", IsDeleted=True, AccountId=A1, Amount=1.0),
]
A, B, G, D = "Alpha Deal", "beta deal", "Gamma", "delta_50%"

T1, T2, T3, T4 = (make_id("00T", n) for n in (1, 2, 3, 4))
TASKS = [
    {"Id": T1, "IsDeleted": False, "Subject": "Call", "WhatId": O1},
    {"Id": T2, "IsDeleted": False, "Subject": "Email", "WhatId": A1},
    {"Id": T3, "IsDeleted": False, "Subject": "Nothing", "WhatId": None},
    {"Id": T4, "IsDeleted": False, "Subject": "Lead", "WhatId": make_id("00Q", 1)},
]

STORE: dict[tuple[str, str], dict[str, Any]] = {
    (obj, r["Id"]): r
    for obj, recs in (
        ("User", USERS),
        ("Account", ACCOUNTS),
        ("Opportunity", OPPS),
        ("Task", TASKS),
    )
    for r in recs
}


def resolve(obj: str, rid: str) -> dict[str, Any] | None:
    return STORE.get((obj, rid))


def q(soql: str) -> Query:
    return parse(soql, today=lambda: TODAY)


def names(
    soql: str, records: list[dict[str, Any]] | None = None, deleted: bool = False
) -> list[Any]:
    query = q(soql)
    return [r["Name"] for r in query.run(OPPS if records is None else records, resolve, deleted)]


def where(cond: str) -> list[Any]:
    return names(f"SELECT Id FROM Opportunity WHERE {cond}")


def error(soql: str) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        q(soql)
    return info.value


# --------------------------------------------------------------------------------------------
# WHERE


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("Amount = 1000", [A]),
        ("Amount = 1000.0", [A]),
        ("Amount != 1000", [B, D]),
        ("Amount <> 1000", [B, D]),
        ("Amount < 1000", [D]),
        ("Amount <= 1000", [A, D]),
        ("Amount > 1000", [B]),
        ("Amount >= 1000", [A, B]),
        ("Amount > -1", [A, B, D]),
        ("Amount = +250.5", [D]),
        ("Amount IN (1000, 250.5)", [A, D]),
        ("Amount NOT IN (1000)", [B, D]),
        ("Amount>=1000", [A, B]),
    ],
)
def test_numeric_operators(cond: str, expected: list[str]) -> None:
    """Every comparison operator on a currency field, with int, decimal and signed literals."""
    assert where(cond) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("Name = 'alpha deal'", [A]),
        ("Name = 'ALPHA DEAL'", [A]),
        ("Name != 'Alpha Deal'", [B, G, D]),
        ("Name IN ('GAMMA', 'nope')", [G]),
        ("Name NOT IN ('gamma', 'BETA DEAL')", [A, D]),
        ("Name < 'b'", [A]),
        ("Name >= 'BETA'", [B, G, D]),
        ("StageName = 'closed won'", [B]),
        ("NextStep = 'CALL'", [A]),
    ],
)
def test_string_operators_are_case_insensitive(cond: str, expected: list[str]) -> None:
    """String =, !=, IN, NOT IN and ordering comparisons ignore case, as in Salesforce."""
    assert where(cond) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("Name LIKE 'alpha%'", [A]),
        ("Name LIKE '%DEAL'", [A, B]),
        ("Name LIKE '_eta%'", [B]),
        ("Name LIKE '%a%'", [A, B, G, D]),
        ("Name LIKE 'gamm_'", [G]),
        ("Name LIKE 'gamm'", []),
        ("Name LIKE 'al%deal'", [A]),
        (r"Name LIKE 'delta\_50\%'", [D]),
        (r"Name LIKE 'delta\_%'", [D]),
        (r"Name LIKE 'delta\%'", []),
        ("Name LIKE 'DELTA_50%'", [D]),
        ("NOT Name LIKE '%deal'", [G, D]),
        ("NextStep LIKE '%'", [A]),
    ],
)
def test_like(cond: str, expected: list[str]) -> None:
    """LIKE: % and _ wildcards, escaped \\% and \\_, case-insensitive, false on null."""
    assert where(cond) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("IsWon = true", [B]),
        ("IsWon = FALSE", [A, G, D]),
        ("IsWon != true", [A, G, D]),
        ("IsWon IN (true)", [B]),
        ("IsWon = null", [A, G, D]),
        ("IsWon != null", [B]),
        ("IsWon IN (null)", [A, G, D]),
    ],
)
def test_boolean(cond: str, expected: list[str]) -> None:
    """Booleans take true/false; null on a boolean field means false (as Salesforce documents)."""
    assert where(cond) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("Amount = null", [G]),
        ("Amount != null", [A, B, D]),
        ("Amount IN (null, 1000)", [A, G]),
        ("Amount NOT IN (null, 1000)", [B, D]),
        ("NextStep = null", [B, G, D]),
        ("NextStep != 'other'", [A]),
        ("NOT Amount = 1000", [B, G, D]),
        ("AccountId = null", [G]),
        ("Amount < 1000000", [A, B, D]),
        ("Account.Name = null", [G, D]),
        ("Account.Name != 'acme'", [B]),
    ],
)
def test_null_handling(cond: str, expected: list[str]) -> None:
    """= null and != null work; other comparisons with a null value are false (NOT negates)."""
    assert where(cond) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("CloseDate = 2026-11-20", [A]),
        ("CloseDate > 2026-11-19", [A, B]),
        ("CloseDate <= 2026-11-19", [G, D]),
        ("CloseDate = TODAY", [A]),
        ("CloseDate = today", [A]),
        ("CloseDate = YESTERDAY", [G]),
        ("CloseDate = TOMORROW", []),
        ("CloseDate >= TODAY", [A, B]),
        ("CloseDate != TODAY", [B, G, D]),
        ("CloseDate = LAST_N_DAYS:1", [A, G]),
        ("CloseDate = LAST_N_DAYS:60", [A, G, D]),
        ("CloseDate < LAST_N_DAYS:1", [D]),
        ("CloseDate <= LAST_N_DAYS:1", [A, G, D]),
        ("CloseDate = NEXT_N_DAYS:11", [B]),
        ("CloseDate = NEXT_N_DAYS:10", []),
        ("CloseDate > NEXT_N_DAYS:5", [B]),
        ("CloseDate IN (2026-11-19, 2026-12-01)", [B, G]),
        ("CloseDate IN (TODAY, YESTERDAY)", [A, G]),
        ("CloseDate NOT IN (TODAY, YESTERDAY)", [B, D]),
    ],
)
def test_date_field_literals(cond: str, expected: list[str]) -> None:
    """Absolute and relative date literals (relative to the injected today) on a date field."""
    assert where(cond) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("CreatedDate = 2026-11-20T08:15:00Z", [A]),
        ("CreatedDate = 2026-11-20T08:15:00.000+0000", [A]),
        ("CreatedDate = 2026-11-20T09:15:00+01:00", [A]),
        ("CreatedDate = 2026-11-20T03:15:00-0500", [A]),
        ("CreatedDate > 2026-11-20T08:15:00Z", [G]),
        ("CreatedDate < 2026-11-20T00:00:00Z", [B, D]),
        ("CreatedDate >= 2026-11-19T23:59:59.999Z", [A, B, G]),
    ],
)
def test_datetime_literals(cond: str, expected: list[str]) -> None:
    """Datetime literals in each accepted form are normalised to UTC before comparing."""
    assert where(cond) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        # B was stamped 23:59:59.999: to SOQL that is 23:59:59, milliseconds on either side
        # are dropped before comparing (salesforce.stackexchange.com/q/234824).
        ("CreatedDate = 2026-11-19T23:59:59Z", [B]),
        ("CreatedDate = 2026-11-19T23:59:59.000Z", [B]),
        ("CreatedDate > 2026-11-19T23:59:59.000Z", [A, G]),
        ("CreatedDate > 2026-11-19T23:59:59.500Z", [A, G]),
        ("CreatedDate >= 2026-11-19T23:59:59.999Z", [A, B, G]),
        ("CreatedDate <= 2026-11-19T23:59:59.000Z", [B, D]),
        ("CreatedDate < 2026-11-19T23:59:59.999Z", [D]),
        ("CreatedDate IN (2026-11-19T23:59:59Z)", [B]),
    ],
)
def test_datetimes_compare_to_the_second(cond: str, expected: list[str]) -> None:
    """SOQL compares datetimes to the second although stamps carry milliseconds."""
    assert where(cond) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("CreatedDate = TODAY", [A]),
        ("CreatedDate = YESTERDAY", [B]),
        ("CreatedDate = TOMORROW", [G]),
        ("CreatedDate = 2026-11-20", [A]),
        ("CreatedDate > 2026-11-20", [G]),
        ("CreatedDate >= 2026-11-20", [A, G]),
        ("CreatedDate < 2026-11-20", [B, D]),
        ("CreatedDate <= 2026-11-20", [A, B, D]),
        ("CreatedDate != TODAY", [B, G, D]),
        ("CreatedDate = LAST_N_DAYS:1", [A, B]),
        ("CreatedDate < LAST_N_DAYS:1", [D]),
        ("CreatedDate > LAST_N_DAYS:1", [G]),
        ("CreatedDate IN (YESTERDAY, TOMORROW)", [B, G]),
    ],
)
def test_date_literal_on_datetime_field_means_whole_utc_day(cond: str, expected: list[str]) -> None:
    """A date literal against a datetime field covers the whole UTC day (or range of days)."""
    assert where(cond) == expected


def test_ids_compare_case_sensitively_on_15_characters() -> None:
    """Id literals may be 15 or 18 characters; the first 15 compare case-sensitively."""
    assert O1[:14] == O2[:14] and O1[14] == "a" and O2[14] == "A"
    assert where(f"Id = '{O2}'") == [B]
    assert where(f"Id = '{O2[:15]}'") == [B]
    assert where(f"Id = '{O1[:15]}'") == [A]
    assert where(f"Id = '{O1[:15]}AAA'") == [A]  # the case-safe suffix is not compared
    assert where(f"Id != '{O1}'") == [B, G, D]
    assert where(f"AccountId IN ('{A1[:15]}', '{A2}')") == [A, B]
    assert where(f"OwnerId != '{U1}'") == [B, D]


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("Account.Name = 'ACME'", [A]),
        ("account.name IN ('globex')", [B]),
        ("Owner.Name LIKE 'ada%'", [A, G]),
        ("Owner.IsActive = false", [B, D]),
        ("Account.Owner.Name = 'Bob Stone'", [B]),
        ("account.owner.isactive = true", [A]),
        ("Account.Industry = null", [B, G, D]),
        (f"Account.OwnerId = '{U2}'", [B]),
    ],
)
def test_relationship_fields_in_where(cond: str, expected: list[str]) -> None:
    """Parent relationship paths (one or two hops) are resolved through the resolver."""
    assert where(cond) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("Amount > 100 AND IsWon = false", [A, D]),
        ("Amount > 2000 OR Name = 'gamma'", [B, G]),
        ("(Amount > 2000 OR Name = 'gamma') AND CloseDate > 2026-11-19", [B]),
        ("NOT (Amount > 2000 OR Name = 'gamma')", [A, D]),
        ("IsWon = false AND Amount != null AND CloseDate < 2026-11-01", [D]),
        ("Name = 'gamma' OR Name = 'alpha deal' OR Name = 'x'", [A, G]),
        ("NOT NOT IsWon = true", [B]),
        ("(((IsWon = true)))", [B]),
        ("NOT IsWon = true AND Amount > 500", [A]),
        ("(Amount = 1000 AND IsWon = false) OR (Amount = 5000 AND IsWon = true)", [A, B]),
    ],
)
def test_boolean_logic(cond: str, expected: list[str]) -> None:
    """AND, OR, NOT and parentheses combine conditions; NOT binds to the next condition."""
    assert where(cond) == expected


def test_string_escapes() -> None:
    """Backslash escapes in string literals: \\' \\\\ \\n (and upper-case \\N)."""
    recs = [
        {"Id": make_id("006", 50), "IsDeleted": False, "Name": "it's"},
        {"Id": make_id("006", 51), "IsDeleted": False, "Name": "back\\slash"},
        {"Id": make_id("006", 52), "IsDeleted": False, "Name": "line\nbreak"},
    ]
    sel = "SELECT Id FROM Opportunity WHERE "
    assert names(sel + r"Name = 'it\'s'", recs) == ["it's"]
    assert names(sel + r"Name = 'back\\slash'", recs) == ["back\\slash"]
    assert names(sel + r"Name = 'line\nbreak'", recs) == ["line\nbreak"]
    assert names(sel + r"Name LIKE 'LINE\Nbreak'", recs) == ["line\nbreak"]


def test_keywords_and_names_are_case_insensitive() -> None:
    """Keywords, object and field names may be written in any case."""
    soql = (
        "select name from OPPORTUNITY where amount > 1 and iswon = FALSE "
        "order by NAME desc nulls last limit 5"
    )
    assert names(soql) == [D, A]


def test_matches_without_where_is_true() -> None:
    """A query without WHERE matches every record, deleted or not."""
    query = q("SELECT Id FROM Opportunity")
    assert all(query.matches(r, resolve) for r in OPPS)


def test_today_comes_from_the_injected_clock() -> None:
    """TODAY is taken from the `today` callable given to parse."""
    query = parse(
        "SELECT Id FROM Opportunity WHERE CloseDate = TODAY", today=lambda: date(2026, 12, 1)
    )
    assert [r["Name"] for r in query.run(OPPS, resolve, False)] == [B]


def test_today_defaults_to_utc_today() -> None:
    """Without a clock, TODAY is the current UTC date."""
    before = datetime.now(UTC).date()
    query = parse("SELECT Id FROM Opportunity WHERE CloseDate = TODAY")
    after = datetime.now(UTC).date()
    rec = _opp(O1, "now", CloseDate=before.isoformat())
    assert query.matches(rec, resolve) or before != after


# --------------------------------------------------------------------------------------------
# ORDER BY, LIMIT, COUNT(), deleted rows


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("Name", [A, B, D, G]),
        ("Name DESC", [G, D, B, A]),
        ("Amount", [G, D, A, B]),
        ("Amount ASC NULLS LAST", [D, A, B, G]),
        ("Amount DESC", [B, A, D, G]),
        ("Amount DESC NULLS FIRST", [G, B, A, D]),
        ("IsWon DESC, Name", [B, A, D, G]),
        ("IsWon, CloseDate DESC", [A, G, D, B]),
        ("CreatedDate", [D, B, A, G]),
        ("StageName", [G, B, D, A]),
        ("Account.Name", [G, D, A, B]),
        ("Account.Name DESC", [B, A, G, D]),
        ("Owner.Name, Name", [A, G, B, D]),
        ("Owner.Name DESC, Amount DESC", [B, D, A, G]),
    ],
)
def test_order_by(order: str, expected: list[str]) -> None:
    """ORDER BY: ASC NULLS FIRST and DESC NULLS LAST by default, several keys, relationships."""
    assert names(f"SELECT Id FROM Opportunity ORDER BY {order}") == expected


def test_order_by_is_stable_and_case_insensitive() -> None:
    """Strings sort case-insensitively; ties keep their input order, ascending or descending."""
    recs = [
        {"Id": make_id("006", 60 + i), "IsDeleted": False, "Name": n}
        for i, n in enumerate(["b", "A", "a", "B"])
    ]
    assert names("SELECT Id FROM Opportunity ORDER BY Name", recs) == ["A", "a", "b", "B"]
    assert names("SELECT Id FROM Opportunity ORDER BY Name DESC", recs) == ["b", "B", "A", "a"]


def test_sort_without_order_by_keeps_input_order() -> None:
    """sort() returns a new list in input order when there is no ORDER BY."""
    query = q("SELECT Id FROM Opportunity")
    backwards = list(reversed(OPPS))
    out = query.sort(backwards, resolve)
    assert out == backwards and out is not backwards


def test_limit() -> None:
    """LIMIT applies after filtering and sorting; LIMIT 0 returns nothing."""
    assert names("SELECT Id FROM Opportunity ORDER BY Amount DESC LIMIT 2") == [B, A]
    assert names("SELECT Id FROM Opportunity LIMIT 3") == [A, B, G]
    assert names("SELECT Id FROM Opportunity WHERE Amount > 0 LIMIT 0") == []
    assert q("SELECT Id FROM Opportunity LIMIT 7").limit == 7
    assert q("SELECT Id FROM Opportunity").limit is None


def test_count() -> None:
    """SELECT COUNT() sets count_only; run() returns the matching rows (LIMIT still applies)."""
    query = q("SELECT COUNT() FROM Opportunity WHERE IsWon = false")
    assert query.count_only and query.sobject is OPPORTUNITY
    assert len(query.run(OPPS, resolve, False)) == 3
    assert len(query.run(OPPS, resolve, True)) == 4
    assert len(q("select count() from opportunity limit 2").run(OPPS, resolve, False)) == 2
    assert not q("SELECT Id FROM Opportunity").count_only


def test_include_deleted() -> None:
    """run() drops IsDeleted rows unless include_deleted (queryAll)."""
    assert names("SELECT Id FROM Opportunity WHERE IsDeleted = true") == []
    assert names("SELECT Id FROM Opportunity WHERE IsDeleted = true", deleted=True) == [
        "Deleted Deal"
    ]
    assert len(q("SELECT Id FROM Opportunity").run(OPPS, resolve, True)) == 5


# --------------------------------------------------------------------------------------------
# Projection


def _attrs(obj: str, rid: str) -> dict[str, str]:
    return {"type": obj, "url": f"{BASE}/{obj}/{rid}"}


def test_projection_shape() -> None:
    """Canonical field names in SELECT order; relationship fields share one nested dict."""
    query = q(
        "SELECT id, NAME, owner.name, Amount, OWNER.email, account.name, Account.Owner.Name "
        "FROM opportunity"
    )
    out = query.project(OPPS[0], resolve, API)
    assert out == {
        "attributes": _attrs("Opportunity", O1),
        "Id": O1,
        "Name": "Alpha Deal",
        "Owner": {
            "attributes": _attrs("User", U1),
            "Name": "Ada Lovelace",
            "Email": "ada@example.com",
        },
        "Amount": 1000.0,
        "Account": {
            "attributes": _attrs("Account", A1),
            "Name": "Acme",
            "Owner": {"attributes": _attrs("User", U1), "Name": "Ada Lovelace"},
        },
    }
    assert list(out) == ["attributes", "Id", "Name", "Owner", "Amount", "Account"]
    assert list(out["Owner"]) == ["attributes", "Name", "Email"]


def test_projection_of_missing_parents_is_none() -> None:
    """A null or unresolvable reference projects as None; absent fields project as None."""
    query = q("SELECT Name, Account.Name, Description FROM Opportunity")
    assert query.project(OPPS[2], resolve, API) == {
        "attributes": _attrs("Opportunity", O3),
        "Name": "Gamma",
        "Account": None,
        "Description": None,
    }
    assert query.project(OPPS[3], resolve, API)["Account"] is None


def test_polymorphic_relationship_resolved_by_key_prefix() -> None:
    """Task.What resolves by the id's key prefix, in WHERE, ORDER BY and the projection."""
    query = q(
        "SELECT Subject, What.Name FROM Task WHERE What.Name LIKE 'a%' ORDER BY What.Name DESC"
    )
    assert query.sobject is TASK
    hits = query.run(TASKS, resolve, False)
    assert [t["Id"] for t in hits] == [T1, T2]
    assert query.project(hits[1], resolve, API) == {
        "attributes": _attrs("Task", T2),
        "Subject": "Email",
        "What": {"attributes": _attrs("Account", A1), "Name": "Acme"},
    }
    assert query.project(hits[0], resolve, API)["What"]["attributes"]["type"] == "Opportunity"
    assert query.project(TASKS[2], resolve, API)["What"] is None
    assert query.project(TASKS[3], resolve, API)["What"] is None  # a Lead: not in the schema
    nameless = q("SELECT Id FROM Task WHERE What.Name = null").run(TASKS, resolve, False)
    assert [t["Id"] for t in nameless] == [T3, T4]


# --------------------------------------------------------------------------------------------
# Errors

_SHAPE = re.compile(
    r"\n(?P<line>[^\n]*)\n(?P<caret> *)\^\nERROR at Row:(?P<row>\d+):Column:(?P<col>\d+)\n"
)


def test_error_messages_match_salesforce_examples() -> None:
    """The unexpected-token and unknown-object messages are exactly Salesforce's."""
    e = error("SELECT Id FROM Opportunity GROUP BY Name")
    assert (e.error_code, e.message) == (
        "MALFORMED_QUERY",
        "\nSELECT Id FROM Opportunity GROUP BY Name\n                           ^\n"
        "ERROR at Row:1:Column:28\nunexpected token: 'GROUP'",
    )
    e = error("SELECT Id FROM Opp")
    assert (e.error_code, e.message) == (
        "INVALID_TYPE",
        "\nSELECT Id FROM Opp\n               ^\nERROR at Row:1:Column:16\nsObject type 'Opp' is "
        "not supported. If you are attempting to use a custom object, be sure to append the "
        "'__c' after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names.",
    )
    assert str(e) == "INVALID_TYPE: " + e.message


@pytest.mark.parametrize(
    ("soql", "column", "token"),
    [
        ("SELECT Id FROM Opportunity LIMIT 5 OFFSET 2", 36, "'OFFSET'"),
        ("SELECT Id, (SELECT Id FROM Tasks) FROM Opportunity", 12, "'('"),
        ("SELECT FIELDS(ALL) FROM Opportunity", 14, "'('"),
        ("SELECT COUNT(Id) FROM Opportunity", 14, "'Id'"),
        ("SELECT Name, COUNT() FROM Opportunity", 19, "'('"),
        ("SELECT Name FROM Opportunity GROUP BY Name HAVING COUNT(Id) > 1", 30, "'GROUP'"),
        ("SELECT Id FROM Opportunity WHERE Name IN (SELECT Name FROM Account)", 43, "'SELECT'"),
        ("SELECT Id FROM Opportunity WHERE CALENDAR_YEAR(CreatedDate) = 2020", 47, "'('"),
        ("SELECT Id FROM Opportunity WHERE Amount > 1 AND Amount < 5 OR IsWon = true", 60, "'OR'"),
        ("SELECT Id FROM Opportunity WHERE Amount > 1 OR Amount < 5 AND IsWon = true", 59, "'AND'"),
        ("SELECT Id FROM Opportunity WHERE CreatedDate > THIS_MONTH", 48, "'THIS_MONTH'"),
        ('SELECT Id FROM Opportunity WHERE Name = "x"', 41, "'\"'"),
        ("SELECT Id FROM Opportunity WHERE 'x' = Name", 34, "''x''"),
        ("SELECT Id FROM Opportunity o", 28, "'o'"),
        ("SELECT Id FROM Opportunity LIMIT -1", 34, "'-1'"),
        ("SELECT Id FROM Opportunity ORDER BY Name NULLS", 47, "<EOF>"),
        ("SELECT FROM Opportunity", 8, "'FROM'"),
        ("SELECT Id FROM", 15, "<EOF>"),
        ("SELECT Id FROM Opportunity FOR UPDATE", 28, "'FOR'"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = 2026-02-30", 46, "'2026-02-30'"),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = LAST_N_DAYS:99999999",
            46,
            "'LAST_N_DAYS:99999999'",
        ),
    ],
)
def test_unsupported_syntax_is_malformed_query(soql: str, column: int, token: str) -> None:
    """Anything outside the subset names the unexpected token and its row and column."""
    e = error(soql)
    assert e.error_code == "MALFORMED_QUERY"
    m = _SHAPE.match(e.message)
    assert m is not None, e.message
    assert (m["line"], m["row"], int(m["col"]), len(m["caret"])) == (soql, "1", column, column - 1)
    assert e.message.endswith(f"\nunexpected token: {token}")


def test_error_position_on_a_later_row() -> None:
    """On a multi-line query the message shows the offending line and its row."""
    e = error("SELECT Id\nFROM Opportunity\nWHERE Foo = 1")
    assert e.error_code == "INVALID_FIELD"
    assert e.message.startswith(
        "\nWHERE Foo = 1\n      ^\nERROR at Row:3:Column:7\nNo such column 'Foo'"
    )


def _no_column(name: str, entity: str) -> str:
    return (
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )


def _no_relationship(name: str) -> str:
    return (
        f"Didn't understand relationship '{name}' in field path. If you are attempting to use a "
        "custom relationship, be sure to append the '__r' after the custom relationship name. "
        "Please reference your WSDL or the describe call for the appropriate names."
    )


@pytest.mark.parametrize(
    ("soql", "column", "tail"),
    [
        ("SELECT Foo FROM Opportunity", 8, _no_column("Foo", "Opportunity")),
        ("SELECT Id FROM Opportunity WHERE bar = 1", 34, _no_column("bar", "Opportunity")),
        ("SELECT Id FROM Opportunity ORDER BY Baz", 37, _no_column("Baz", "Opportunity")),
        ("SELECT Owner FROM Opportunity", 8, _no_column("Owner", "Opportunity")),
        ("SELECT Owner.Foo FROM Opportunity", 8, _no_column("Foo", "User")),
        ("SELECT What.StageName FROM Task", 8, _no_column("StageName", "Name")),
        ("SELECT Foo.Name FROM Opportunity", 8, _no_relationship("Foo")),
        ("SELECT OwnerId.Name FROM Opportunity", 8, _no_relationship("OwnerId")),
        ("SELECT Owner.Account.Name FROM Opportunity", 8, _no_relationship("Account")),
        ("SELECT What.Owner.Name FROM Task", 8, _no_relationship("What")),
        (
            "SELECT Id FROM Opportunity ORDER BY Description",
            37,
            "field 'Description' can not be sorted in a query call",
        ),
    ],
)
def test_invalid_field(soql: str, column: int, tail: str) -> None:
    """Unknown fields and relationships (in SELECT, WHERE, ORDER BY) are INVALID_FIELD."""
    e = error(soql)
    assert e.error_code == "INVALID_FIELD"
    assert e.message == f"\n{soql}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\n{tail}"


@pytest.mark.parametrize(
    ("soql", "dup"),
    [
        ("SELECT Id, Name, Id FROM Opportunity", "Id"),
        ("select id, name, NAME from opportunity", "NAME"),
        ("SELECT Owner.Name, Name, owner.NAME FROM Opportunity", "owner.NAME"),
    ],
)
def test_duplicate_field(soql: str, dup: str) -> None:
    """Selecting a field twice (in any case) is MALFORMED_QUERY naming the duplicate."""
    e = error(soql)
    assert e.error_code == "MALFORMED_QUERY"
    assert e.message.endswith(f"\nduplicate field selected: {dup}")


_UNQUOTED = " and should not be enclosed in quotes"
_QUOTED = " and should be enclosed in quotes"


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ("CloseDate = '2026-11-20'", "'CloseDate' must be of type date" + _UNQUOTED),
        (
            "CreatedDate > '2026-11-20T00:00:00Z'",
            "'CreatedDate' must be of type dateTime" + _UNQUOTED,
        ),
        ("Amount = '5'", "'Amount' must be of type double" + _UNQUOTED),
        ("IsWon = 'true'", "'IsWon' must be of type boolean" + _UNQUOTED),
        ("Name = 2026-11-20", "'Name' must be of type string" + _QUOTED),
        ("Name = TODAY", "'Name' must be of type string" + _QUOTED),
        ("Name IN ('a', 5)", "'Name' must be of type string" + _QUOTED),
        ("Name LIKE true", "'Name' must be of type string" + _QUOTED),
        ("Id = 5", "'Id' must be of type id" + _QUOTED),
        ("Account.Name = 1", "'Account.Name' must be of type string" + _QUOTED),
        ("Amount = true", "'Amount' must be of type double"),
        ("CloseDate = 2026-11-20T00:00:00Z", "'CloseDate' must be of type date"),
        ("IsWon = 1", "'IsWon' must be of type boolean"),
    ],
)
def test_type_mismatch_is_malformed_query(cond: str, message: str) -> None:
    """A literal of the wrong type for its field is refused with Salesforce's wording."""
    e = error(f"SELECT Id FROM Opportunity WHERE {cond}")
    assert e.error_code == "MALFORMED_QUERY"
    assert _SHAPE.match(e.message)
    assert e.message.endswith("\nvalue of filter criterion for field " + message)


def test_int_field_type_word() -> None:
    """An int field's type error says 'int'."""
    e = error("SELECT Id FROM Account WHERE NumberOfEmployees > '5'")
    assert e.message.endswith("field 'NumberOfEmployees' must be of type int" + _UNQUOTED)


def test_invalid_string_escape() -> None:
    """An unknown backslash escape in a string literal is MALFORMED_QUERY."""
    e = error(r"SELECT Id FROM Opportunity WHERE Name = 'a\q'")
    assert e.error_code == "MALFORMED_QUERY"
    assert e.message.endswith(
        r"Invalid string literal 'a\q'. Illegal character sequence '\q' in string literal."
    )


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ("IsWon > true", "invalid operator '>' for field 'IsWon' of type boolean"),
        ("IsWon <= false", "invalid operator '<=' for field 'IsWon' of type boolean"),
        ("Amount LIKE '5%'", "invalid operator 'LIKE' for field 'Amount' of type currency"),
        ("Id LIKE '006%'", "invalid operator 'LIKE' for field 'Id' of type id"),
        ("Name LIKE null", "invalid operator 'LIKE' for a null value"),
        ("Amount > null", "invalid operator '>' for a null value"),
        ("Id = 'abc'", "invalid ID field: abc"),
        (f"AccountId IN ('{A1}', '{A1}x')", f"invalid ID field: {A1}x"),
    ],
)
def test_invalid_filter_operator(cond: str, message: str) -> None:
    """Operators a type does not support, and malformed ids: INVALID_QUERY_FILTER_OPERATOR."""
    e = error(f"SELECT Id FROM Opportunity WHERE {cond}")
    assert e.error_code == "INVALID_QUERY_FILTER_OPERATOR"
    assert _SHAPE.match(e.message)
    assert e.message.endswith("\n" + message)


def test_count_with_order_by_is_refused() -> None:
    """COUNT() cannot be combined with ORDER BY."""
    e = error("SELECT COUNT() FROM Opportunity ORDER BY Name")
    assert e.error_code == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:33\n" in e.message


# --------------------------------------------------------------------------------------------
# Property test: WHERE, ORDER BY and LIMIT agree with a straightforward Python reference

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_OPS = st.sampled_from(list(_CMP))
_STR = st.text(alphabet="aAbB", max_size=3)
_DATES = ["2026-11-18", "2026-11-19", "2026-11-20"]
_STAMPS = [
    "2026-11-18T23:59:59.999+0000",
    "2026-11-19T00:00:00.000+0000",
    "2026-11-19T12:00:00.000+0000",
    "2026-11-20T00:00:00.000+0000",
]
_AMOUNTS = [-1.0, 0.0, 2.5, 10.0]

Cond = tuple[str, Callable[[dict[str, Any]], bool]]


def _like(value: str, pattern: str) -> bool:
    if not pattern:
        return not value
    if pattern[0] == "%":
        return any(_like(value[i:], pattern[1:]) for i in range(len(value) + 1))
    if value and pattern[0] in ("_", value[0]):
        return _like(value[1:], pattern[1:])
    return False


def _cmp_leaf(fld: str, op: str, literal: str, value: Any, key: Callable[[Any], Any]) -> Cond:
    cmp = _CMP[op]
    return f"{fld} {op} {literal}", lambda r: r[fld] is not None and cmp(key(r[fld]), value)


def _ident(v: Any) -> Any:
    return v


def _utc_date(v: str) -> str:
    return v[:10]  # a date literal on a datetime field compares the record's UTC date


def _null_leaf(fld: str, eq: bool) -> Cond:
    return f"{fld} {'=' if eq else '!='} null", lambda r: (r[fld] is None) == eq


def _like_leaf(pattern: str) -> Cond:
    def fn(r: dict[str, Any]) -> bool:
        return r["Name"] is not None and _like(r["Name"].lower(), pattern.lower())

    return f"Name LIKE '{pattern}'", fn


def _in_leaf(negate: bool, values: list[str]) -> Cond:
    wanted = {v.lower() for v in values}

    def fn(r: dict[str, Any]) -> bool:
        return r["Name"] is not None and ((r["Name"].lower() in wanted) != negate)

    listed = ", ".join(f"'{v}'" for v in values)
    return f"Name {'NOT IN' if negate else 'IN'} ({listed})", fn


_LEAVES: st.SearchStrategy[Cond] = st.one_of(
    st.builds(lambda op, s: _cmp_leaf("Name", op, f"'{s}'", s.lower(), str.lower), _OPS, _STR),
    st.builds(
        lambda op, a: _cmp_leaf("Amount", op, repr(a), a, _ident),
        _OPS,
        st.sampled_from(_AMOUNTS),
    ),
    st.builds(
        lambda op, d: _cmp_leaf("CloseDate", op, d, d, _ident), _OPS, st.sampled_from(_DATES)
    ),
    st.builds(
        lambda op, d: _cmp_leaf("CreatedDate", op, d, d, _utc_date),
        _OPS,
        st.sampled_from(_DATES),
    ),
    st.builds(
        lambda op, b: _cmp_leaf("IsWon", op, str(b).lower(), b, _ident),
        st.sampled_from(["=", "!="]),
        st.booleans(),
    ),
    st.builds(_null_leaf, st.sampled_from(["Name", "Amount", "CloseDate"]), st.booleans()),
    st.builds(_like_leaf, st.text(alphabet="aAbB%_", max_size=4)),
    st.builds(_in_leaf, st.booleans(), st.lists(_STR, min_size=1, max_size=3)),
)


def _combine(children: st.SearchStrategy[Cond]) -> st.SearchStrategy[Cond]:
    def joined(word: str, conds: list[Cond]) -> Cond:
        text = "(" + f" {word} ".join(t for t, _ in conds) + ")"
        fns = [f for _, f in conds]
        if word == "AND":
            return text, lambda r: all(f(r) for f in fns)
        return text, lambda r: any(f(r) for f in fns)

    def negated(c: Cond) -> Cond:
        return f"(NOT {c[0]})", lambda r: not c[1](r)

    many = st.lists(children, min_size=2, max_size=3)
    return st.one_of(
        many.map(lambda cs: joined("AND", cs)),
        many.map(lambda cs: joined("OR", cs)),
        children.map(negated),
    )


_CONDS = st.recursive(_LEAVES, _combine, max_leaves=6)

_RECORDS = st.lists(
    st.fixed_dictionaries(
        {
            "IsDeleted": st.booleans(),
            "Name": st.one_of(st.none(), _STR),
            "Amount": st.one_of(st.none(), st.sampled_from(_AMOUNTS)),
            "CloseDate": st.one_of(st.none(), st.sampled_from(_DATES)),
            "CreatedDate": st.sampled_from(_STAMPS),
            "IsWon": st.booleans(),
        }
    ),
    max_size=12,
)

_ORDER = st.lists(
    st.tuples(
        st.sampled_from(["Name", "Amount", "CloseDate", "CreatedDate", "IsWon"]),
        st.sampled_from(["", " ASC", " DESC"]),
        st.sampled_from(["", " NULLS FIRST", " NULLS LAST"]),
    ),
    max_size=3,
    unique_by=lambda t: t[0],
)


def _reference_order(keys: list[tuple[str, str, str]]) -> Callable[[Any, Any], int]:
    def cmp(a: dict[str, Any], b: dict[str, Any]) -> int:
        for fld, direction, nulls in keys:
            desc = direction == " DESC"
            va, vb = a[fld], b[fld]
            if fld == "Name":
                va, vb = (None if v is None else v.lower() for v in (va, vb))
            if va is None and vb is None:
                continue
            nulls_first = (not desc) if not nulls else nulls == " NULLS FIRST"
            if va is None:
                return -1 if nulls_first else 1
            if vb is None:
                return 1 if nulls_first else -1
            if va != vb:
                c = -1 if va < vb else 1
                return -c if desc else c
        return 0

    return cmp


@settings(max_examples=300, deadline=None)
@given(
    records=_RECORDS,
    cond=st.one_of(st.none(), _CONDS),
    order=_ORDER,
    limit=st.one_of(st.none(), st.integers(0, 6)),
    include_deleted=st.booleans(),
)
def test_matches_reference_implementation(
    records: list[dict[str, Any]],
    cond: Cond | None,
    order: list[tuple[str, str, str]],
    limit: int | None,
    include_deleted: bool,
) -> None:
    """run() (WHERE + ORDER BY + LIMIT) agrees with a plain Python evaluation on random records."""
    for i, r in enumerate(records):
        r["Id"] = make_id("006", i + 1)
    soql = "SELECT Id FROM Opportunity"
    if cond is not None:
        soql += f" WHERE {cond[0]}"
    if order:
        soql += " ORDER BY " + ", ".join(f + d + n for f, d, n in order)
    if limit is not None:
        soql += f" LIMIT {limit}"
    expected = [
        r
        for r in records
        if (include_deleted or not r["IsDeleted"]) and (cond is None or cond[1](r))
    ]
    expected = sorted(expected, key=cmp_to_key(_reference_order(order)))
    if limit is not None:
        expected = expected[:limit]
    got = q(soql).run(records, resolve, include_deleted)
    assert [r["Id"] for r in got] == [r["Id"] for r in expected], soql


# --------------------------------------------------------------------------------------------
# Performance
