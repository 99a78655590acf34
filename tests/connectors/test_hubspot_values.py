"""The normalizer's one-step conversions (`normalize` on a record whose text is all storable) give
what `convert` gives, value and type, and refuse what it refuses, with the same reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crmsync.config import load_mapping
from crmsync.model.mapping import Mapping
from crmsync.model.normalize import NormalizeError, normalize

ROOT = Path(__file__).resolve().parents[2]
STAMP = "2026-11-13T22:56:14.000Z"

# Raw values as the CRMs send them, and the odd ones the one-step path leaves to `convert`.
SHAPES: dict[str, list[Any]] = {
    "hs_lastmodifieddate": [
        STAMP,
        "2026-11-13T22:56:14Z",
        "2026-11-13T22:56:14.123456Z",
        "2026-11-13T22:56:14.000+0000",
        "2026-11-13T17:56:14.000-0500",
        "2026-11-13T22:56:14+00:00",
        "1763074574000",
        "2026-11-13",
        " 2026-11-13T22:56:14.000Z ",
        "2026-11-13T22:56:14.000ZZ",
        "2026-13-13T22:56:14.000Z",
    ],
    "closedate": [
        "2026-12-29T00:00:00.000Z",
        "2026-12-29",
        "2026-12-29T23:30:00.000-0500",
        "1798502400000",
        "2026-1-29",
        "2026-02-30",
        "",
        "  ",
        None,
    ],
    "amount": [
        "54400",
        "-0.25",
        "-0",
        "1234567890123456",
        "12345678901234567",
        "0.000000000000001",
        "1E+30",
        "1e-30",
        " 54400 ",
        "+5",
        "NaN",
        "Infinity",
        "5.",
        "١٢٣",
        "abc",
        54400,
        54400.5,
        True,
        "",
        None,
    ],
    "hs_deal_stage_probability": ["0.4", "1", "0", "1E+17", "x", None, 0.4],
    "hs_is_closed": ["true", "false", "TRUE", " true", "1", "0", "yes", "no", "maybe", True, 1, ""],
    "hs_next_step": ["Intro call", "", "   ", None, 42, True],
    "dealname": ["Deal", "x" * 131_073, "   "],
}


def _values(**changed: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "dealname": "Deal",
        "hs_lastmodifieddate": STAMP,
        "dealstage": "closedwon",
        "amount": "100",
        "hs_is_closed": "false",
        "closedate": "2026-12-29T00:00:00.000Z",
        "@owner.active": True,
        "@stage.probability": 0.4,
    }
    values.update(changed)
    return values


def _outcome(mapping: Mapping, values: dict[str, Any]) -> Any:
    try:
        opp = normalize("hs", "1", values, mapping)
    except NormalizeError as e:
        return ("refused", str(e))
    return [(name, type(value), repr(value)) for name, value in vars_of(opp)]


def vars_of(opp: Any) -> list[tuple[str, Any]]:
    return [(name, getattr(opp, name)) for name in opp.__slots__]


@pytest.mark.parametrize(
    ("field", "raw"),
    [(field, raw) for field, raws in SHAPES.items() for raw in raws],
    ids=repr,
)
def test_one_step_conversion_equals_convert(field: str, raw: Any) -> None:
    """A record converted in one step equals the same record taken value by value through
    `convert` (forced by a NUL in a field the mapping does not read)."""
    mapping = load_mapping(ROOT / "connectors/hubspot.yaml")
    quick = _outcome(mapping, _values(**{field: raw}))
    slow = _outcome(mapping, _values(**{field: raw, "not_mapped": "\x00"}))
    assert quick == slow


def test_a_bad_text_anywhere_is_refused_as_before() -> None:
    """A NUL in a mapped field is refused with its field's reason, on either path."""
    mapping = load_mapping(ROOT / "connectors/hubspot.yaml")
    outcome = _outcome(mapping, _values(hs_next_step="a\x00b"))
    assert outcome[0] == "refused" and outcome[1].startswith("next_step: contains a NUL")


def test_custom_fields_are_kept_under_their_names() -> None:
    """Custom fields come out under `custom`, by their own names, converted by their type."""
    mapping = load_mapping(ROOT / "connectors/hubspot.yaml")
    opp = normalize("hs", "1", _values(crmsync_flags="a,b"), mapping, stage_ids=("closedwon",))
    assert opp.custom == {"flags": "a,b"}
    assert opp.stage_canonical == "closed_won" and opp.is_closed is False


@pytest.mark.parametrize("scale", [100.0, 0.01, 1e-10, 1e17, 3.0])
@pytest.mark.parametrize("raw", ["0.4", "123456789012345", "0.000000000000001", "7", "x", None])
@pytest.mark.parametrize("field", ["amount", "probability"])
def test_scaled_numbers_equal_convert(field: str, scale: float, raw: Any) -> None:
    """A scaled number (within the limits, or past them once scaled) comes out as `convert`
    makes it, or is refused with its reason."""
    from crmsync.model.mapping import Source

    base = load_mapping(ROOT / "connectors/hubspot.yaml")
    fields = {**base.fields, field: Source(field="scaled", scale=scale)}
    mapping = base.model_copy(update={"fields": fields})
    quick = _outcome(mapping, _values(scaled=raw))
    slow = _outcome(mapping, _values(scaled=raw, not_mapped="\x00"))
    assert quick == slow
