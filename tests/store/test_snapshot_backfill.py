"""Backfilled snapshots: past days rebuilt from a hand-built field history, day by day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from crmsync.model.records import HistoryRow
from crmsync.store import Store, snapshot_backfill
from crmsync.store.schema import pipeline_snapshot_days
from crmsync.store.snapshots import backfill, read_as_of, snapshot_days, write_day
from tests.store.builders import CONN, NOW, OBJ, opp
from tests.store.test_snapshots import add_episode

TODAY = NOW.date()  # 2026-11-20; the backfill covers 10 to 19 November
STAGES = {
    "Prospecting": "qualified",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiation",
    "Closed Won": "closed_won",
}


def at(day: int, hour: int = 12) -> datetime:
    """A moment of November 2026 (or of a month before, for day <= 0)."""
    return datetime(2026, 11, 1, hour, tzinfo=UTC) + timedelta(days=day - 1)


def crm(native_id: str, field: str, old: str | None, new: str | None, when: datetime) -> HistoryRow:
    return HistoryRow(f"{CONN}:{native_id}", field, old, new, when, "crm")


def nov(day: int) -> date:
    return date(2026, 11, day)


def build(store: Store) -> None:
    """Five deals with known histories (see each comment), stored as a sync would."""
    deals = [
        # A: moved stage on the 12th, amount up on the 14th, close date pushed on the 15th,
        # owner handed over on the 11th; a finding open from the 13th to the 17th
        opp(
            "006A",
            created_at=at(-30),
            stage="Proposal/Price Quote",
            stage_canonical="proposal",
            probability=60.0,
            amount=Decimal("1500"),
            close_date=date(2027, 1, 15),
            owner_id="005A",
        ),
        # B: created on the 16th, no history
        opp("006B", created_at=at(16, 9), probability=10.0, amount=Decimal("200")),
        # C: open all along in Prospecting, probability 10 (the stage's usual one today)
        opp("006C", created_at=at(-60), probability=10.0, amount=Decimal("300")),
        # D: in negotiation, won on the 13th at 15:00
        opp(
            "006D",
            created_at=at(-25),
            stage="Closed Won",
            stage_canonical="closed_won",
            is_closed=True,
            is_won=True,
            probability=100.0,
            amount=Decimal("4000"),
        ),
        # E: closed today with no stage history: when it closed is unknown
        opp(
            "006E",
            created_at=at(-25),
            stage="Closed Won",
            stage_canonical="closed_won",
            is_closed=True,
            is_won=True,
        ),
        # F: open, deleted in the CRM on the 14th at 08:00
        opp("006F", created_at=at(-10), probability=10.0, amount=Decimal("50")),
    ]
    history = [
        crm("006A", "stage", None, "Prospecting", at(-30)),
        crm("006A", "stage", "Prospecting", "Proposal/Price Quote", at(12, 10)),
        crm("006A", "amount", None, "1000", at(-30)),
        crm("006A", "amount", "1000", "1500", at(14, 9)),
        crm("006A", "close_date", "2026-12-01", "2027-01-15", at(15)),
        HistoryRow(f"{CONN}:006A", "owner_id", "005X", "005A", at(11, 8), "observed"),
        crm("006D", "stage", None, "Negotiation/Review", at(-25)),
        crm("006D", "stage", "Negotiation/Review", "Closed Won", at(13, 15)),
    ]
    store.apply_batch(CONN, OBJ, opportunities=deals, history=history, observed_at=NOW)
    store.apply_batch(CONN, OBJ, deleted_ids=["006F"], observed_at=at(14, 8))
    add_episode(
        store, f"{CONN}:006A", opened_at=at(13, 8), state="resolved", resolved_at=at(17, 10)
    )
    add_episode(store, f"{CONN}:006C", rule="r2", opened_at=at(18, 23))


Expected = tuple[str, str | None, str | None, Decimal | None, float | None, date | None, str, int]


def expected(day: int) -> set[Expected]:
    """By hand: (deal, stage, canonical, amount, probability, close date, owner, findings)."""
    close = (NOW + timedelta(days=60)).date()
    out: set[Expected] = set()
    a_stage = (
        ("Prospecting", "qualified", 10.0)
        if day < 12
        else ("Proposal/Price Quote", "proposal", 60.0)
    )
    out.add(
        (
            "006A",
            a_stage[0],
            a_stage[1],
            Decimal("1000") if day < 14 else Decimal("1500"),
            a_stage[2],
            date(2026, 12, 1) if day < 15 else date(2027, 1, 15),
            "005X" if day < 11 else "005A",
            1 if 13 <= day <= 16 else 0,
        )
    )
    if day >= 16:
        out.add(("006B", "Prospecting", "qualified", Decimal("200"), 10.0, close, "005A", 0))
    out.add(
        ("006C", "Prospecting", "qualified", Decimal("300"), 10.0, close, "005A", int(day >= 18))
    )
    if day < 13:  # no open deal in negotiation today, a closed deal's own 100 says nothing
        out.add(
            ("006D", "Negotiation/Review", "negotiation", Decimal("4000"), None, close, "005A", 0)
        )
    if day < 14:
        out.add(("006F", "Prospecting", "qualified", Decimal("50"), 10.0, close, "005A", 0))
    return out


def got(store: Store, day: date) -> tuple[set[Expected], set[str]]:
    rows = read_as_of(store, day, [CONN])
    assert {r.day for r in rows} <= {day}
    values = {
        (
            r.key.split(":")[1],
            r.stage,
            r.stage_canonical,
            r.amount,
            r.probability,
            r.close_date,
            r.owner_id,
            r.open_findings,
        )
        for r in rows
    }
    return values, {r.origin for r in rows}


@pytest.mark.parametrize("page", [2000, 2])
def test_backfill_rebuilds_each_day_from_the_history(
    store: Store, page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stage, amount, close date and owner changes land on their days; a deal created, closed or
    deleted mid-period is there only while it was open; findings count on the days they were
    open; a day a sync wrote is kept as the sync wrote it. The same read a page of 2 deals and
    written 3 rows at a time."""
    if page == 2:
        monkeypatch.setattr(snapshot_backfill, "PAGE_DEALS", 2)
        monkeypatch.setattr(snapshot_backfill, "BATCH_ROWS", 3)
    build(store)
    write_day(store, CONN, nov(15))  # a real snapshot, taken as the deals stand now
    synced, _ = got(store, nov(15))
    written = backfill(store, CONN, days=10, today=TODAY, stages=STAGES)
    assert snapshot_days(store, [CONN], nov(1), TODAY) == [nov(d) for d in range(10, 20)]
    total = 0
    for day in range(10, 20):
        values, origins = got(store, nov(day))
        if day == 15:
            assert (values, origins) == (synced, {"sync"})
            continue
        assert values == expected(day), day
        assert origins == {"backfill"}
        total += len(values)
    assert written == total
    assert backfill(store, CONN, days=10, today=TODAY, stages=STAGES) == 0  # nothing left


def test_backfill_without_a_mapping_learns_stages_from_todays_deals(store: Store) -> None:
    """Without the mapping, a stage some deal sits in today maps as that deal's; a stage none
    sits in keeps the canonical stage its own history recorded (none here)."""
    build(store)
    backfill(store, CONN, days=10, today=TODAY)
    values, _ = got(store, nov(11))
    assert ("006A", "Prospecting", "qualified") in {v[:3] for v in values}
    assert ("006D", "Negotiation/Review", None) in {v[:3] for v in values}


def test_an_unfinished_backfill_is_redone_whole(store: Store) -> None:
    """Rows a stopped backfill left on days it had not marked are dropped and written again."""
    build(store)
    backfill(store, CONN, days=10, today=TODAY, stages=STAGES)
    first = {d: got(store, nov(d))[0] for d in range(10, 20)}
    with store.writing("unmark") as conn:  # as if it had stopped before marking its days
        conn.execute(pipeline_snapshot_days.delete())
    assert backfill(store, CONN, days=10, today=TODAY, stages=STAGES) == sum(
        len(v) for v in first.values()
    )
    assert {d: got(store, nov(d))[0] for d in range(10, 20)} == first


def test_the_backfill_copies_what_a_sync_copies() -> None:
    """The backfill's columns come from the snapshot table; what its rows copy from a deal is
    what a sync's snapshot copies (snapshots.COPIED, a list of its own)."""
    from crmsync.store import snapshots

    assert snapshot_backfill.COPIED == snapshots.COPIED
