"""History summaries: kept in step with the history they summarize, on both backends."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pytest

from crmsync.model.records import HistoryRow, HistorySummary
from crmsync.store import Store, summaries
from crmsync.store.history import StageSummarizer, summarize
from tests.store.builders import CONN, NOW, OBJ, opp

STAGES = {"Prospecting": "qualified", "Discovery": "discovery", "Proposal": "proposal"}
SUMMARIZER = StageSummarizer(STAGES)


def _row(native_id: str, field: str, old: str | None, new: str | None, days_ago: int) -> HistoryRow:
    return HistoryRow(f"{CONN}:{native_id}", field, old, new, NOW - timedelta(days=days_ago), "crm")


def _expected(store: Store, key: str) -> HistorySummary:
    """The summary made afresh from what is stored now."""
    record = store.get(key)
    assert record is not None
    return summarize(record, store.history(key), SUMMARIZER.canonical_of)


def _kept(store: Store, version: str = SUMMARIZER.version) -> dict[str, HistorySummary | None]:
    return {o.key: s for o, s in store.iter_summarized(CONN, version)}


def _check_all_current(store: Store) -> None:
    kept = _kept(store)
    assert kept and all(s is not None for s in kept.values())
    for key, summary in kept.items():
        assert summary == _expected(store, key), key
    assert store.stale_summaries(CONN, SUMMARIZER.version) == 0


def test_a_batch_keeps_summaries_in_step_with_the_history(store: Store) -> None:
    history = [
        _row("A", "stage", None, "Prospecting", 40),
        _row("A", "stage", "Prospecting", "Proposal", 20),  # skips discovery
        _row("A", "close_date", "2026-12-01", "2027-01-15", 10),
    ]
    deals = [
        opp("A", stage="Proposal", stage_canonical="proposal", close_date=date(2027, 1, 15)),
        opp("B", next_step="Call back"),
    ]
    store.apply_batch(
        CONN, OBJ, opportunities=deals, history=history, observed_at=NOW, summarizer=SUMMARIZER
    )
    _check_all_current(store)
    a = _kept(store)[f"{CONN}:A"]
    assert a is not None
    assert a.close_date_push_count == 1 and a.close_date_slip_days == 45
    assert a.skipped_stages == ("discovery",)
    assert a.stays == (("qualified", 20.0),)

    # the close date pushed again in a later sync: the summary follows
    later = opp(
        "A",
        stage="Proposal",
        stage_canonical="proposal",
        close_date=date(2027, 3, 1),
        modified_at=NOW,
    )
    store.apply_batch(CONN, OBJ, opportunities=[later], observed_at=NOW, summarizer=SUMMARIZER)
    a = _kept(store)[f"{CONN}:A"]
    assert a is not None and a.close_date_push_count == 2
    _check_all_current(store)

    # CRM history arriving on its own (a history page): the summary follows too
    store.apply_batch(
        CONN,
        "OpportunityHistory",
        history=[_row("B", "next_step", None, "Call back", 3)],
        observed_at=NOW,
        summarizer=SUMMARIZER,
    )
    _check_all_current(store)


def test_a_write_without_summarizer_drops_what_it_touched(store: Store) -> None:
    """Out of date is allowed, wrong is not: an untracked write forgets the summaries of the
    deals it changed, and refresh_summaries remakes exactly those."""
    deals = [opp(f"D{i}") for i in range(5)]
    store.apply_batch(CONN, OBJ, opportunities=deals, observed_at=NOW, summarizer=SUMMARIZER)
    assert store.stale_summaries(CONN, SUMMARIZER.version) == 0

    pushed = [opp(f"D{i}", close_date=date(2027, 6, 1), modified_at=NOW) for i in (1, 3)]
    store.apply_batch(CONN, OBJ, opportunities=pushed, observed_at=NOW)  # no summarizer
    kept = _kept(store)
    assert [k for k, s in kept.items() if s is None] == [f"{CONN}:D1", f"{CONN}:D3"]
    assert store.stale_summaries(CONN, SUMMARIZER.version) == 2

    assert store.refresh_summaries(CONN, SUMMARIZER, batch_size=1) == 2
    assert store.refresh_summaries(CONN, SUMMARIZER) == 0
    _check_all_current(store)
    d1 = _kept(store)[f"{CONN}:D1"]
    assert d1 is not None and d1.close_date_push_count == 1


def test_another_mapping_makes_every_summary_stale(store: Store) -> None:
    store.apply_batch(
        CONN, OBJ, opportunities=[opp("A"), opp("B")], observed_at=NOW, summarizer=SUMMARIZER
    )
    other = StageSummarizer({**STAGES, "Prospecting": "discovery"})
    assert other.version != SUMMARIZER.version
    assert store.has_summaries(CONN, SUMMARIZER.version)
    assert not store.has_summaries(CONN, other.version)
    assert not store.has_summaries("sf_other", SUMMARIZER.version)  # another connection
    assert StageSummarizer(dict(STAGES)).version == SUMMARIZER.version  # same mapping, same name
    assert store.stale_summaries(CONN, other.version) == 2
    assert set(_kept(store, other.version).values()) == {None}
    assert store.refresh_summaries(CONN, other) == 2
    assert store.stale_summaries(CONN, other.version) == 0
    assert store.stale_summaries(CONN, SUMMARIZER.version) == 2


def test_deleted_deals_are_not_counted_stale_but_are_refreshed(store: Store) -> None:
    store.apply_batch(CONN, OBJ, opportunities=[opp("A"), opp("B")], observed_at=NOW)
    store.apply_batch(CONN, OBJ, deleted_ids=["B"], observed_at=NOW)
    assert store.stale_summaries(CONN, SUMMARIZER.version) == 1
    assert store.refresh_summaries(CONN, SUMMARIZER) == 2


@pytest.mark.parametrize("moves", [0, 2])
def test_stays_are_read_back_exactly(store: Store, moves: int) -> None:
    """Completed stays (fractional days) come back from both readers as they were made."""
    at = NOW - timedelta(days=30, hours=5, minutes=7)
    history = [HistoryRow(f"{CONN}:A", "stage", None, "Prospecting", at, "crm")]
    for old, new, hours in (("Prospecting", "Discovery", 37), ("Discovery", "Proposal", 500)):
        if len(history) > moves:
            break
        at += timedelta(hours=hours, seconds=13)
        history.append(HistoryRow(f"{CONN}:A", "stage", old, new, at, "crm"))
    current = history[-1].new_value
    deal = opp("A", stage=current, stage_canonical=STAGES[str(current)], modified_at=NOW)
    store.apply_batch(
        CONN, OBJ, opportunities=[deal], history=history, observed_at=NOW, summarizer=SUMMARIZER
    )
    kept = _kept(store)[f"{CONN}:A"]
    assert kept is not None and kept == _expected(store, f"{CONN}:A")
    assert len(kept.stays) == moves
    assert list(store.iter_summary_stays(CONN, SUMMARIZER.version)) == (
        [(None, kept.stays)] if moves else []
    )
    lean = [s for _, s in store.iter_summarized(CONN, SUMMARIZER.version, stays=False)]
    assert lean == [dataclasses.replace(kept, stays=())]


def _store_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys whose record and history `remake` reads back from the store."""
    read: list[str] = []
    original = summaries._with_history

    def spy(conn: Any, keys: Sequence[str], *args: Any) -> Any:
        read.extend(keys)
        return original(conn, keys, *args)

    monkeypatch.setattr(summaries, "_with_history", spy)
    return read


def test_new_deals_are_summarized_from_the_rows_in_hand(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's new deals with no stored history are summarized from the record and the rows
    the batch writes (its own duplicates skipped as the store skips them), nothing read back;
    the summaries are what the store would make; a changed deal is read back."""
    read = _store_reads(monkeypatch)
    history = [
        _row("A", "stage", None, "Prospecting", 40),
        _row("A", "stage", "Prospecting", "Proposal", 20),
        _row("A", "stage", "Prospecting", "Proposal", 20),  # stated twice: stored once
        _row("A", "close_date", "2026-12-01", "2027-01-15", 10),
        _row("A", "next_step", None, None, 5),
        _row("A", "next_step", "x", None, 5),  # the same cleared value: one entry
    ]
    deals = [
        opp("A", stage="Proposal", stage_canonical="proposal", close_date=date(2027, 1, 15)),
        opp("B", next_step="Call back"),
    ]
    store.apply_batch(
        CONN, OBJ, opportunities=deals, history=history, observed_at=NOW, summarizer=SUMMARIZER
    )
    assert read == []
    _check_all_current(store)
    changed = opp("B", next_step="Send the proposal", modified_at=NOW)
    store.apply_batch(CONN, OBJ, opportunities=[changed], observed_at=NOW, summarizer=SUMMARIZER)
    assert read == [f"{CONN}:B"]
    _check_all_current(store)


def test_a_new_deal_with_stored_history_is_summarized_from_the_store(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CRM history stored before its record (a history page first): the new record's summary
    takes that history in, read back from the store."""
    read = _store_reads(monkeypatch)
    early = [_row("A", "stage", None, "Prospecting", 40), _row("A", "stage", "x", "y", 39)]
    store.apply_batch(CONN, "OpportunityHistory", history=early, observed_at=NOW)
    deal = opp("A", stage="Proposal", stage_canonical="proposal")
    store.apply_batch(CONN, OBJ, opportunities=[deal], observed_at=NOW, summarizer=SUMMARIZER)
    assert read == [f"{CONN}:A"]
    _check_all_current(store)


def test_new_deals_without_crm_history_are_summarized_from_their_observed_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HubSpot's pages: new deals and no CRM history. Each summary is made from the deal's
    first observed rows (a deal given twice counts as its newest), nothing read back, and is
    what the store would make from its history."""
    read = _store_reads(monkeypatch)
    older = opp("A", next_step="Call", modified_at=NOW - timedelta(days=3))
    deals = [
        older,
        opp("B", stage="Proposal", stage_canonical="proposal", next_step="Send it"),
        dataclasses.replace(older, next_step="Meet", stage_entered_at=NOW - timedelta(days=2)),
        opp("C", stage=None, stage_canonical=None, close_date=None, amount=None),
    ]
    result = store.apply_batch(
        CONN, OBJ, opportunities=deals, observed_at=NOW, summarizer=SUMMARIZER
    )
    assert result.inserted == 3 and read == []
    _check_all_current(store)
    assert _kept(store)[f"{CONN}:A"] == _expected(store, f"{CONN}:A")
    assert store.history(f"{CONN}:A", "next_step")[0].new_value == "Meet"
