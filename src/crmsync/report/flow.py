"""How the pipeline moved between two days: the review's waterfall ("flow"), slipped deals and
the weekly total. Pure functions over snapshot rows, amounts kept exact (Decimal) per currency.

"In the pipeline" means open with a close date on or before the window's end (the end of the
quarter holding the report's last day): a deal closing later is not part of this quarter's
call, and moving its close date across that line is what "pushed" and "pulled in" mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from crmsync.model.snapshots import SnapshotRow

ZERO = Decimal(0)
NO_CURRENCY = ""  # the currency key of deals without one

# The waterfall's steps in drawing order (first and last are totals); the sign each step
# takes in the balance start + new + pulled_in - pushed - won - lost + up - down = end.
STEPS = ("start", "new", "pulled_in", "pushed", "up", "down", "won", "lost", "end")
SIGN = {"new": 1, "pulled_in": 1, "pushed": -1, "up": 1, "down": -1, "won": -1, "lost": -1}

# What became of a deal open at the start and out of the pipeline at the end (its state now).
WON, LOST, OPEN = "won", "lost", "open"


def quarter_end(day: date) -> date:
    """The last day of the calendar quarter holding `day`."""
    first_month_next = (day.month - 1) // 3 * 3 + 4
    if first_month_next > 12:
        return date(day.year, 12, 31)
    return date(day.year, first_month_next, 1) - timedelta(days=1)


def in_window(row: SnapshotRow, window_end: date) -> bool:
    """Whether an open deal counts in the pipeline: its close date is on or before the window's
    end (overdue ones too); a deal without a close date is not forecast to close, so not."""
    return row.close_date is not None and row.close_date <= window_end


def amount_of(row: SnapshotRow) -> Decimal:
    """A row's amount, a missing one counted as zero."""
    return row.amount if row.amount is not None else ZERO


def currency_of(row: SnapshotRow) -> str:
    """A row's currency key (NO_CURRENCY when the deal has none)."""
    return row.currency or NO_CURRENCY


@dataclass
class FlowTotals:
    """One currency's waterfall: each step's (positive) amount and how many deals it holds."""

    amounts: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(STEPS, ZERO))
    deals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STEPS, 0))

    def add(self, step: str, amount: Decimal) -> None:
        """Count one deal in `step` for `amount`."""
        self.amounts[step] += amount
        self.deals[step] += 1

    def balance(self) -> Decimal:
        """start plus the signed steps minus end: zero when every deal was counted once."""
        moved = sum((SIGN[s] * self.amounts[s] for s in SIGN), ZERO)
        return self.amounts["start"] + moved - self.amounts["end"]


@dataclass(frozen=True)
class Move:
    """Where one deal landed in the waterfall (a deal in both has its amount change here)."""

    key: str
    step: str
    currency: str
    amount: Decimal  # positive: the amount the step counts


def moves(
    start: Sequence[SnapshotRow],
    end: Sequence[SnapshotRow],
    window_end: date,
    fate: Mapping[str, str],
) -> list[Move]:
    """Each deal's step between two days' open rows (both already narrowed to the report's
    filters, not to the window). `fate` says what became of a deal that was open at the start
    and is open nowhere at the end: WON, LOST (closed lost or deleted), or OPEN (still open but
    outside the filters): a missing one counts as lost. A deal whose currency changed leaves
    its old currency as "down" and enters its new one as "up"."""
    start_by = {r.key: r for r in start}
    end_by = {r.key: r for r in end}
    out: list[Move] = []
    for key, row in start_by.items():
        if not in_window(row, window_end):
            continue
        cur, amt = currency_of(row), amount_of(row)
        out.append(Move(key, "start", cur, amt))
        later = end_by.get(key)
        if later is not None and in_window(later, window_end):
            new_cur, new_amt = currency_of(later), amount_of(later)
            if new_cur != cur:
                out.append(Move(key, "down", cur, amt))
                out.append(Move(key, "up", new_cur, new_amt))
            elif new_amt > amt:
                out.append(Move(key, "up", cur, new_amt - amt))
            elif new_amt < amt:
                out.append(Move(key, "down", cur, amt - new_amt))
        elif later is not None or fate.get(key, LOST) == OPEN:
            out.append(Move(key, "pushed", cur, amt))
        else:
            out.append(Move(key, "won" if fate.get(key) == WON else "lost", cur, amt))
    for key, row in end_by.items():
        if not in_window(row, window_end):
            continue
        cur, amt = currency_of(row), amount_of(row)
        out.append(Move(key, "end", cur, amt))
        earlier = start_by.get(key)
        if earlier is None:
            out.append(Move(key, "new", cur, amt))
        elif not in_window(earlier, window_end):
            out.append(Move(key, "pulled_in", cur, amt))
    return out


def flow(
    start: Sequence[SnapshotRow],
    end: Sequence[SnapshotRow],
    window_end: date,
    fate: Mapping[str, str],
) -> dict[str, FlowTotals]:
    """The waterfall per currency (see `moves`); it balances exactly in each currency."""
    out: dict[str, FlowTotals] = {}
    for move in moves(start, end, window_end, fate):
        totals = out.setdefault(move.currency, FlowTotals())
        if move.step in ("up", "down") and move.amount == ZERO:
            continue
        totals.add(move.step, move.amount)
    return out


@dataclass(frozen=True)
class Slip:
    """A deal whose close date moved later while it stayed open."""

    key: str
    row: SnapshotRow  # as it stands at the end
    old_close: date
    new_close: date | None  # None: the close date was cleared


def slipped(
    start: Sequence[SnapshotRow], end: Sequence[SnapshotRow], window_end: date
) -> list[Slip]:
    """Deals in the pipeline at the start that are still open at the end with a later close
    date (or none): by how far it moved out, the biggest slip first, then by key."""
    end_by = {r.key: r for r in end}
    out: list[Slip] = []
    for row in start:
        later = end_by.get(row.key)
        if later is None or not in_window(row, window_end):
            continue
        assert row.close_date is not None  # in_window says so
        if later.close_date is None or later.close_date > row.close_date:
            out.append(Slip(row.key, later, row.close_date, later.close_date))

    def far(s: Slip) -> tuple[int, str]:
        days = (s.new_close - s.old_close).days if s.new_close else 10**6
        return (-days, s.key)

    return sorted(out, key=far)


def pushed_often(
    rows: Iterable[SnapshotRow], pushes: Mapping[str, int], at_least: int = 3
) -> list[tuple[SnapshotRow, int]]:
    """Open deals whose close date was pushed `at_least` times or more (a known forecast risk):
    most pushes first, then by key."""
    found = [(r, pushes.get(r.key, 0)) for r in rows]
    return sorted(((r, n) for r, n in found if n >= at_least), key=lambda p: (-p[1], p[0].key))


def totals(rows: Iterable[SnapshotRow]) -> dict[str, Decimal]:
    """The summed amount of the rows per currency."""
    out: dict[str, Decimal] = {}
    for row in rows:
        cur = currency_of(row)
        out[cur] = out.get(cur, ZERO) + amount_of(row)
    return out


def week_ends(since: date, until: date) -> list[date]:
    """One day per week from `until` back to no earlier than `since`, oldest first."""
    days: list[date] = []
    day = until
    while day >= since:
        days.append(day)
        day -= timedelta(days=7)
    return days[::-1]
