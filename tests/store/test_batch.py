"""apply_batch: counts, observed and CRM history, deletes, set-asides and the cursor, atomically."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from crmsync.model import Opportunity
from crmsync.model.records import BatchResult, Cursor, HistoryRow, SetAside
from crmsync.store import Store, StoreError
from crmsync.store import batch as batch_module
from tests.store.builders import CONN, NOW, OBJ, opp

LATER = NOW + timedelta(hours=1)


def _apply(store: Store, *opps: Opportunity, **kwargs: Any) -> BatchResult:
    kwargs.setdefault("observed_at", NOW)
    return store.apply_batch(CONN, OBJ, opportunities=opps, **kwargs)


def test_insert_update_unchanged_counts(store: Store) -> None:
    """New records count as inserted, changed ones as updated, identical ones as unchanged."""
    a, b, c = opp("A"), opp("B"), opp("C")
    assert _apply(store, a, b) == BatchResult(2, 0, 0, 0, 10)
    b2 = replace(b, name="Renamed", modified_at=LATER)
    result = _apply(store, a, b2, c, observed_at=LATER)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    assert store.get(b.key) == b2
    assert store.count(CONN) == 3


def test_new_record_gets_history_for_each_tracked_value(store: Store) -> None:
    """A first sighting records every tracked field with a value, from None, at modified_at."""
    new = opp(next_step=None)
    result = _apply(store, new)
    rows = store.history(new.key)
    assert result.history_rows == len(rows) == 5
    assert {r.field for r in rows} == {
        "owner_id",
        "stage",
        "amount",
        "close_date",
        "stage_canonical",
    }
    assert all(r.old_value is None and r.origin == "observed" for r in rows)
    assert all(r.changed_at == new.modified_at for r in rows)  # what the CRM vouched for then
    assert store.history(new.key, "close_date")[0].new_value == new.close_date.isoformat()  # type: ignore[union-attr]


def test_changed_tracked_fields_are_observed(store: Store) -> None:
    """An update records old and new text for each tracked field that changed, at modified_at."""
    first = opp()
    _apply(store, first)
    moved = replace(
        first,
        stage="Negotiation",
        stage_canonical="negotiation",
        amount=Decimal("2500.50"),
        name="Not tracked",
        modified_at=LATER,
    )
    assert _apply(store, moved, observed_at=LATER).history_rows == 3
    stage = store.history(first.key, "stage")
    assert [(r.old_value, r.new_value) for r in stage] == [
        (None, "Prospecting"),
        ("Prospecting", "Negotiation"),
    ]
    assert stage[-1].changed_at == LATER
    [_, amount] = store.history(first.key, "amount")
    assert (amount.old_value, amount.new_value) == ("1000.00", "2500.50")
    assert store.history(first.key, "name") == []


def test_no_history_when_nothing_tracked_changed(store: Store) -> None:
    """Re-applying the same record, or changing untracked fields only, adds no history."""
    first = opp()
    _apply(store, first)
    before = store.history(first.key)
    assert _apply(store, first).history_rows == 0
    assert _apply(store, replace(first, name="Other", modified_at=LATER)).history_rows == 0
    assert store.history(first.key) == before


def test_crm_history_is_idempotent(store: Store) -> None:
    """Re-reading the CRM's history (cleared values included) never duplicates a row."""
    key = opp().key
    rows = [
        HistoryRow(key, "stage", None, "Prospecting", NOW - timedelta(days=3), "crm"),
        HistoryRow(key, "stage", "Prospecting", "Proposal", NOW - timedelta(days=2), "crm"),
        HistoryRow(key, "next_step", "Call", None, NOW - timedelta(days=1), "crm"),
    ]
    assert _apply(store, history=rows).history_rows == 3
    assert _apply(store, history=rows).history_rows == 0
    assert _apply(store, history=[*rows, *rows]).history_rows == 0
    assert store.history(key) == rows


def test_deletes_and_revival(store: Store) -> None:
    """Deleted ids are marked (unknown ones ignored) and a later live version revives them."""
    a, b = opp("A"), opp("B")
    _apply(store, a, b)
    assert _apply(store, deleted_ids=["A", "unknown"], observed_at=LATER).deleted == 1
    assert _apply(store, deleted_ids=["A"], observed_at=LATER).deleted == 0
    gone = store.get(a.key)
    assert gone is not None and gone.deleted
    assert store.count(CONN) == 1
    assert store.count(CONN, include_deleted=True) == 2
    assert store.native_ids(CONN) == {"B"}
    assert store.native_ids(CONN, include_deleted=True) == {"A", "B"}

    result = _apply(store, a, observed_at=LATER)
    assert (result.updated, result.history_rows) == (1, 0)
    back = store.get(a.key)
    assert back is not None and not back.deleted
    assert store.count(CONN) == 2


def test_record_arriving_deleted_is_stored_deleted(store: Store) -> None:
    """A record read as deleted (HubSpot's archived deals) is stored, marked deleted."""
    _apply(store, opp(deleted=True))
    assert store.count() == 0
    assert store.native_ids(CONN, include_deleted=True) == {"006A"}


def test_set_aside_kept_updated_and_cleared(store: Store) -> None:
    """Unusable records are kept with their reason, replaced on re-read, gone once they work."""
    bad = SetAside("006BAD", "amount is not a number", {"Id": "006BAD", "Amount": "ten"})
    _apply(store, set_aside=[bad])
    assert store.set_aside_rows() == [(CONN, bad)]
    worse = SetAside("006BAD", "name missing", {"Id": "006BAD", "Name": None, "Ü": [1, 2]})
    _apply(store, set_aside=[worse])
    assert store.set_aside_rows(CONN) == [(CONN, worse)]
    assert store.set_aside_rows("hs") == []
    _apply(store, opp("006BAD"))
    assert store.set_aside_rows() == []


def test_deleted_record_leaves_set_aside(store: Store) -> None:
    """A set-aside record deleted in the CRM is no longer reported as set aside."""
    _apply(store, set_aside=[SetAside("006BAD", "bad", {})])
    _apply(store, deleted_ids=["006BAD"])
    assert store.set_aside_rows() == []


def test_cursor_moves_with_its_batch(store: Store) -> None:
    """The cursor is stored with a batch, kept by batches without one, and reset on demand."""
    assert store.get_cursor(CONN, OBJ) is None
    _apply(store, opp("A"), cursor=Cursor("2026-11-19T12:00:00Z", ("A",)))
    _apply(store, opp("B"))
    assert store.get_cursor(CONN, OBJ) == Cursor("2026-11-19T12:00:00Z", ("A",))
    _apply(store, opp("C"), cursor=Cursor("2026-11-20T00:00:00Z", ()))
    assert store.get_cursor(CONN, OBJ) == Cursor("2026-11-20T00:00:00Z", ())
    assert store.get_cursor(CONN, "other") is None
    store.reset_cursor(CONN, OBJ)
    assert store.get_cursor(CONN, OBJ) is None


def test_rejected_value_rolls_back_everything(store: Store) -> None:
    """When the database refuses one record, no record, history or cursor of the batch stays."""
    _apply(store, opp("A"), cursor=Cursor("old", ()))
    broken = replace(opp("C"), name=None)  # type: ignore[arg-type]  # NOT NULL refuses it
    with pytest.raises(StoreError) as caught:
        _apply(
            store,
            replace(opp("A"), stage="Won", modified_at=LATER),
            opp("B"),
            broken,
            history=[HistoryRow(opp("A").key, "stage", None, "x", NOW, "crm")],
            set_aside=[SetAside("Z", "bad", {})],
            cursor=Cursor("new", ("B",)),
        )
    assert "\n" not in str(caught.value)
    assert store.get_cursor(CONN, OBJ) == Cursor("old", ())
    assert store.native_ids(CONN) == {"A"}
    assert store.get(opp("A").key) == opp("A")
    assert len(store.history(opp("A").key)) == 5
    assert store.set_aside_rows() == []


def test_failure_after_the_writes_rolls_back(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure at the very end of apply_batch (storing the cursor) undoes the whole batch."""

    def explode(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(batch_module, "_store_cursor", explode)
    with pytest.raises(RuntimeError):
        _apply(store, opp("A"), deleted_ids=["A"], cursor=Cursor("new", ()))
    assert store.count(include_deleted=True) == 0
    assert list(store.iter_history()) == []
    assert store.get_cursor(CONN, OBJ) is None


def test_same_record_twice_in_a_batch_keeps_the_newest(store: Store) -> None:
    """A record repeated in one batch (pages overlapping) is stored once, as its newest version."""
    old, new = opp(name="Old"), opp(name="New", modified_at=LATER)
    assert _apply(store, new, old).inserted == 1
    assert store.get(old.key) == new


def test_batch_must_belong_to_its_connection(store: Store) -> None:
    """Records or history of another connection are refused, and nothing is written."""
    with pytest.raises(ValueError, match="connection"):
        _apply(store, opp("A"), opp("B", connection="hs"))
    with pytest.raises(ValueError, match="hs:1"):
        _apply(store, history=[HistoryRow("hs:1", "stage", None, "x", NOW, "crm")])
    with pytest.raises(ValueError, match="tracked"):
        _apply(store, history=[HistoryRow("sf:1", "name", None, "x", NOW, "crm")])
    assert store.count() == 0


def test_large_batch_spans_several_in_lists(store: Store) -> None:
    """A batch larger than one IN list is read, compared and written completely."""
    many = [opp(f"{i:05d}", stage=None, stage_canonical=None) for i in range(2000)]
    assert _apply(store, *many).inserted == 2000
    changed = [replace(o, amount=Decimal(7), modified_at=LATER) for o in many[::2]]
    result = _apply(store, *many[1::2], *changed, deleted_ids=[o.native_id for o in many[:1000]])
    assert (result.updated, result.unchanged, result.deleted) == (1000, 1000, 1000)
    assert result.history_rows == 1000
    assert store.count(CONN) == 1000


def test_alike_custom_values_are_stored_each_as_given(store: Store) -> None:
    """Records whose custom values are alike share one encoding on the way in; values equal in
    Python but written differently (1, True, 1.0, another key order) each keep their own."""
    customs: list[dict[str, Any]] = [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "x"},
        {"a": True, "b": "x"},
        {"a": 1.0, "b": "x"},
        {"b": "x", "a": 1},
        {"a": None},
        {"a": None},
        {},
    ]
    opps = [opp(f"C{i}", custom=c) for i, c in enumerate(customs)]
    assert _apply(store, *opps).inserted == len(opps)
    for o, custom in zip(opps, customs, strict=True):
        got = store.get(o.key)
        assert got is not None and got.custom == custom
        assert sorted((k, type(v).__name__, repr(v)) for k, v in got.custom.items()) == sorted(
            (k, type(v).__name__, repr(v)) for k, v in custom.items()
        )  # PostgreSQL's JSONB keeps its own key order


def test_values_of_shares_only_an_identical_custom() -> None:
    """`codec.values_of` hands back the given dict for custom values written the same way."""
    from crmsync.store import codec

    like = {"a": 1, "b": None}
    same = codec.values_of(opp(custom={"a": 1, "b": None}), "sf", like=like)[codec.CUSTOM_AT]
    assert same is like
    for other in ({"a": True, "b": None}, {"b": None, "a": 1}, {"a": 1}, {"a": 1.0, "b": None}):
        values = codec.values_of(opp(custom=other), "sf", like=like)
        assert values[codec.CUSTOM_AT] is not like and values[codec.CUSTOM_AT] == other
