"""The hostile-record corpus (tests/data/hostile/records): each CRM record there is set aside with
its exact reason, and the set-aside row it makes is one both stores can hold.

Each file is one record's fields over a good base record, as the CRM's JSON would give them
(`NaN`, `Infinity` and `1e309` bare, as Python's json reads them from an answer), with the exact
reason on its first line (`# expect: ...`); `repeat` builds a long value in the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crmsync.config import load_mapping
from crmsync.model.limits import MAX_TEXT
from crmsync.model.normalize import NormalizeError, normalize, set_aside
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "hostile" / "records"
FILES = sorted(CORPUS.glob("*.json"))

BASE: dict[str, dict[str, Any]] = {
    "salesforce": {
        "Id": "006000000000001AAA",
        "IsDeleted": False,
        "Name": "Acme renewal",
        "StageName": "Prospecting",
        "Amount": 1000.0,
        "Probability": 10.0,
        "CloseDate": "2026-12-31",
        "CreatedDate": "2026-10-01T00:00:00.000+0000",
        "SystemModstamp": "2026-11-20T10:00:00.000+0000",
        "Owner": {"Name": "Pat", "Email": "pat@example.com", "IsActive": True},
    },
    "hubspot": {
        "dealname": "Acme renewal",
        "dealstage": "appointmentscheduled",
        "amount": "1000",
        "closedate": "2026-12-31T00:00:00Z",
        "createdate": "2026-10-01T00:00:00Z",
        "hs_lastmodifieddate": "2026-11-20T10:00:00Z",
        "hs_deal_stage_probability": "0.2",
    },
}


def _flatten(rec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if isinstance(value, dict):
            out.update({f"{key}.{sub}": inner for sub, inner in value.items()})
        else:
            out[key] = value
    return out


def load_case(path: Path) -> tuple[str, str, dict[str, Any]]:
    """(expected reason, crm, the record's values) of one corpus file."""
    first, body = path.read_text(encoding="utf-8").split("\n", 1)
    assert first.startswith("# expect: "), path.name
    case = json.loads(body)
    values = {**BASE[case["crm"]], **case["fields"]}
    for name, (unit, times) in case.get("repeat", {}).items():
        values[name] = unit * times
    return first.removeprefix("# expect: "), case["crm"], _flatten(values)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_hostile_record_is_set_aside_with_its_reason(path: Path) -> None:
    """The record is refused by normalize with the exact reason, and its set-aside row holds
    no NUL, surrogate, NaN, Infinity or over-long value (what PostgreSQL's JSONB refuses)."""
    expect, crm, values = load_case(path)
    mapping = load_mapping(ROOT / "connectors" / f"{crm}.yaml")
    with pytest.raises(NormalizeError) as caught:
        normalize("c", "1", values, mapping, now=NOW)
    aside = set_aside("1", caught.value, values)
    assert aside.reason == expect
    text = json.dumps(aside.raw, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # no unpaired surrogate
    assert "\x00" not in text and "\\u0000" not in json.dumps(aside.reason)
    assert len(text) < 2 * MAX_TEXT


@pytest.mark.parametrize("crm", sorted(BASE))
def test_the_base_records_are_good(crm: str) -> None:
    """The base every corpus file changes normalizes, so each file's one change is the reason."""
    mapping = load_mapping(ROOT / "connectors" / f"{crm}.yaml")
    assert normalize("c", "1", _flatten(BASE[crm]), mapping, now=NOW).name == "Acme renewal"


def test_the_corpus_covers_every_limit() -> None:
    """At least 20 records, on both CRMs."""
    crms = {load_case(p)[1] for p in FILES}
    assert len(FILES) >= 20 and crms == {"salesforce", "hubspot"}
