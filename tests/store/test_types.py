"""Every field type survives a round trip through the store unchanged, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from crmsync.model import Opportunity
from crmsync.store import Store
from tests.store.builders import CONN, NOW, OBJ, opp

IST = timezone(timedelta(hours=5, minutes=30))


def _full() -> Opportunity:
    """An opportunity with every field set, in awkward ways."""
    return Opportunity(
        connection=CONN,
        native_id="006FULL",
        source="salesforce",
        name="Überraschung — 日本語 🚀 'quoted' \"double\" \\ %_",
        modified_at=datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=IST),
        account_id="001X",
        account_name="Ærø Åkeri AB",
        owner_id="005X",
        owner_name="Zoë",
        owner_email="zoe@example.com",
        owner_active=False,
        pipeline="default",
        stage="Negotiation/Review",
        stage_canonical="negotiation",
        is_closed=True,
        is_won=True,
        amount=Decimal("12345678901234.56"),
        currency="EUR",
        probability=33.333333333333336,
        forecast_category="Commit",
        close_date=date(2026, 12, 31),
        next_step="x" * 100_000,
        last_activity_at=datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
        created_at=datetime(1999, 1, 1, tzinfo=timezone(timedelta(hours=-8))),
        stage_entered_at=datetime(2026, 2, 1, tzinfo=UTC),
        budget="€50k approved",
        budget_confirmed=True,
        economic_buyer="CFO",
        pain="Reports take\na week",
        timeline="Q4",
        metrics="20% faster",
        decision_criteria="SOC 2",
        decision_process="Board sign-off",
        champion="Ana",
        custom={"region": "EMEA", "nested": {"list": [1, 2.5, None, "ü"]}, "flag": False},
        deleted=False,
    )


def test_every_field_round_trips(store: Store) -> None:
    """A record with every field set comes back equal, datetimes as the same instants in UTC."""
    original = _full()
    store.apply_batch(CONN, OBJ, opportunities=[original], observed_at=NOW)
    back = store.get(original.key)
    assert back == original
    assert back is not None
    for name in ("modified_at", "last_activity_at", "created_at", "stage_entered_at"):
        assert getattr(back, name).tzinfo == UTC
    assert back.modified_at.microsecond == 123456
    assert str(back.amount) == "12345678901234.56"
    assert back.next_step == "x" * 100_000


def test_nones_round_trip(store: Store) -> None:
    """A record with only its required fields comes back with the optional ones None."""
    bare = Opportunity(CONN, "006BARE", "hubspot", "Bare", NOW)
    store.apply_batch(CONN, OBJ, opportunities=[bare], observed_at=NOW)
    assert store.get(bare.key) == bare


@pytest.mark.parametrize(
    "amount",
    ["12345678901234.56", "0.000000000000000001", "-42.10", "99999999999999999999.99", "0"],
)
def test_decimal_amounts_are_exact(store: Store, amount: str) -> None:
    """Amounts come back digit for digit, never through a float."""
    store.apply_batch(CONN, OBJ, opportunities=[opp(amount=Decimal(amount))], observed_at=NOW)
    back = store.get(opp().key)
    assert back is not None
    assert back.amount is not None
    assert back.amount.as_tuple() == Decimal(amount).as_tuple()  # same digits, same exponent


def test_naive_datetime_is_refused(store: Store) -> None:
    """A naive datetime is a bug upstream; the store refuses it rather than guess a zone."""
    with pytest.raises(ValueError, match="naive"):
        store.apply_batch(
            CONN, OBJ, opportunities=[opp(modified_at=datetime(2026, 1, 1))], observed_at=NOW
        )
    assert store.count() == 0
