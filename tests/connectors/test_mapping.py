"""Mapping files and the normalizer: what an admin edits, and how raw CRM values are read."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.config import load_mapping
from crmsync.errors import InvalidInput
from crmsync.model.normalize import NormalizeError, convert, normalize

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((ROOT / "tests/data/mappings/broken").glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_mapping_gives_one_line_with_file_line_and_field(path: Path) -> None:
    """Each broken mapping fails with exactly the one line its first comment expects."""
    with pytest.raises(InvalidInput) as info:
        load_mapping(path)
    assert str(info.value) == f"{path}:{_expected(path)}"
    assert "\n" not in str(info.value)


def test_shipped_mappings_load() -> None:
    """Both shipped mapping files load and map every qualification field."""
    for crm in ("salesforce", "hubspot"):
        mapping = load_mapping(ROOT / "connectors" / f"{crm}.yaml")
        assert mapping.crm == crm
        assert {"economic_buyer", "decision_criteria", "champion", "pain"} <= set(mapping.fields)
        assert set(mapping.stages.values()) == {
            "qualified",
            "discovery",
            "proposal",
            "negotiation",
            "closed_won",
            "closed_lost",
        }


def test_broken_mapping_from_the_command_line(tmp_path: Path) -> None:
    """`crmsync sync` with a broken mapping prints one line and exits 2, with no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "tests/data/mappings/broken/unknown_field.yaml").read_text())
    config = tmp_path / "crmsync.yaml"
    config.write_text(f"""connections:
  - name: hs
    type: hubspot
    mapping: {bad}
    auth: {{method: private_app, access_token: x, base_url: "https://127.0.0.1:9"}}
""")
    result = CliRunner().invoke(main, ["sync", "-c", str(config)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"crmsync: error: {bad}:8:3: fields.ammount: 'ammount' is not a normalized field "
        "(did you mean 'amount'?)"
    )


def test_broken_config_from_the_command_line(tmp_path: Path) -> None:
    """A config error exits 2 with its file, line and field."""
    config = tmp_path / "crmsync.yaml"
    config.write_text("connections:\n  - name: Bad Name\n    type: salesforce\n")
    result = CliRunner().invoke(main, ["status", "-c", str(config)])
    assert result.exit_code == 2
    assert result.output.startswith(f"crmsync: error: {config}:")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("str", "  ", None),
        ("str", "", None),
        ("str", "Next: call", "Next: call"),
        ("bool", "true", True),
        ("bool", False, False),
        ("decimal", "12345678901234.56", Decimal("12345678901234.56")),
        ("decimal", 1e10, Decimal("10000000000.0")),
        ("decimal", "-5", Decimal("-5")),
        ("float", "0.6", 0.6),
        ("date", "2026-12-31", date(2026, 12, 31)),
        ("date", "2026-12-31T00:00:00.000Z", date(2026, 12, 31)),
        ("date", "1798675200000", date(2026, 12, 31)),
        ("datetime", "2026-11-20T08:15:00.000+0000", datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),
        (
            "datetime",
            "2026-11-20T08:15:00.123Z",
            datetime(2026, 11, 20, 8, 15, 0, 123000, tzinfo=UTC),
        ),
        ("datetime", "2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
    ],
)
def test_convert(kind: str, raw: Any, expected: Any) -> None:
    """Raw CRM values become the normalized types; blanks are missing."""
    assert convert(kind, raw, "f") == expected


@pytest.mark.parametrize(
    ("kind", "raw", "problem"),
    [
        ("decimal", "abc", "is not a valid number"),
        ("decimal", "NaN", "is not a finite number"),
        ("decimal", True, "is not a number"),
        ("bool", "maybe", "is not true or false"),
        ("date", "31/12/2026", "is not a valid date"),
        ("datetime", "yesterday", "is not a valid datetime"),
    ],
)
def test_convert_refuses(kind: str, raw: Any, problem: str) -> None:
    """Values of the wrong type are refused with a reason naming the field."""
    with pytest.raises(NormalizeError) as info:
        convert(kind, raw, "amount")
    assert str(info.value).startswith(f"amount: {problem}")


def test_normalize_scales_and_maps_stages() -> None:
    """HubSpot probabilities scale to 0..100 and stage ids resolve to canonical stages."""
    mapping = load_mapping(ROOT / "connectors" / "hubspot.yaml")
    opp = normalize(
        "hs",
        "1",
        {
            "dealname": "Acme",
            "hs_lastmodifieddate": "2026-11-20T08:15:00.000Z",
            "@stage.label": "Contract Sent",
            "hs_deal_stage_probability": "0.9",
            "amount": "100.50",
            "hs_is_closed": "false",
            "hs_is_closed_won": "false",
        },
        mapping,
        stage_ids=("contractsent",),
    )
    assert opp.key == "hs:1"
    assert opp.stage == "Contract Sent" and opp.stage_canonical == "negotiation"
    assert opp.probability == pytest.approx(90.0)
    assert opp.amount == Decimal("100.50")
    assert opp.is_closed is False


def test_normalize_sets_aside_a_bad_amount() -> None:
    """A non-numeric amount makes the record unusable, with the field and value in the reason."""
    mapping = load_mapping(ROOT / "connectors" / "salesforce.yaml")
    with pytest.raises(NormalizeError, match="amount: is not a valid number"):
        normalize(
            "sf",
            "006",
            {
                "Name": "x",
                "SystemModstamp": "2026-11-20T08:15:00.000+0000",
                "StageName": "Prospecting",
                "Amount": "lots",
            },
            mapping,
        )
