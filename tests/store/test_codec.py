"""The store's fast Opportunity builder must give exactly what the dataclass constructor gives."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from crmsync.model import Opportunity
from crmsync.store import codec


def _values() -> list[object]:
    """A distinct value for every field, of the field's own type."""
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    out: list[object] = []
    for i, f in enumerate(dataclasses.fields(Opportunity)):
        kind = str(f.type)
        if "datetime" in kind:
            out.append(at.replace(minute=i))
        elif "date" in kind:
            out.append(date(2026, 12, i % 28 + 1))
        elif "Decimal" in kind:
            out.append(Decimal("1234.50"))
        elif "bool" in kind:
            out.append(i % 2 == 0)
        elif "float" in kind:
            out.append(float(i))
        elif "dict" in kind:
            out.append({"k": i})
        else:
            out.append(f"{f.name}-{i}")
    return out


def test_build_equals_the_constructor() -> None:
    values = _values()
    built = codec.build(values)
    made = Opportunity(*values)
    assert built == made
    assert hash(built.key) == hash(made.key)
    for f in dataclasses.fields(Opportunity):
        assert getattr(built, f.name) is getattr(made, f.name), f.name


def test_built_opportunities_stay_frozen() -> None:
    built = codec.build(_values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.name = "changed"  # type: ignore[misc]


def test_build_refuses_a_short_row() -> None:
    with pytest.raises(ValueError):
        codec.build(_values()[:-1])
