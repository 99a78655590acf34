"""Pipeline coverage against a quota file: for each quota line (an owner or a team, a period,
an amount in a currency), the open pipeline closing in that period divided by the quota.

The file is CSV with the header `owner_or_team,period_start,period_end,amount,currency`; a
line that cannot be read is an InvalidInput naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from crmsync.errors import InvalidInput
from crmsync.model.snapshots import SnapshotRow
from crmsync.report.flow import ZERO, amount_of

HEADER = ("owner_or_team", "period_start", "period_end", "amount", "currency")


@dataclass(frozen=True)
class Quota:
    """One quota line: who (an owner id or email, or a team id), when, how much."""

    line: int
    who: str
    start: date
    end: date
    amount: Decimal
    currency: str


def parse_quotas(text: str, source: str) -> list[Quota]:
    """The quota lines of a CSV file's text; `source` names the file in errors."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != HEADER:
        raise InvalidInput(f"{source}, line 1: the header must be {','.join(HEADER)}")
    out: list[Quota] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(HEADER):
            raise InvalidInput(
                f"{source}, line {line}: expected {len(HEADER)} fields "
                f"({','.join(HEADER)}), found {len(row)}"
            )
        who, start, end, amount, currency = (cell.strip() for cell in row)
        if not who:
            raise InvalidInput(f"{source}, line {line}, owner_or_team: empty")
        first, last = (
            _day(start, source, line, "period_start"),
            _day(end, source, line, "period_end"),
        )
        if last < first:
            raise InvalidInput(f"{source}, line {line}, period_end: {end} is before {start}")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value <= 0:
            raise InvalidInput(
                f"{source}, line {line}, amount: {amount!r} is not a positive number"
            )
        if not currency:
            raise InvalidInput(f"{source}, line {line}, currency: empty")
        out.append(Quota(line, who, first, last, value, currency.upper()))
    return out


def _day(text: str, source: str, line: int, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{source}, line {line}, {name}: {text!r} is not a date (YYYY-MM-DD)"
        ) from None


@dataclass(frozen=True)
class Coverage:
    """One quota line and the open pipeline that could fill it."""

    quota: Quota
    pipeline: Decimal
    deals: int

    @property
    def ratio(self) -> float:
        """pipeline / quota (3 means three times the quota is in the pipeline)."""
        return float(self.pipeline / self.quota.amount)


def coverage(
    quotas: Iterable[Quota],
    rows: Iterable[SnapshotRow],
    owners_of: Callable[[str], set[str]],
) -> list[Coverage]:
    """Per quota line, in file order: the open rows of its owners (`owners_of` turns the line's
    owner or team into owner ids) in its currency whose close date falls in its period."""
    kept = list(rows)
    out: list[Coverage] = []
    for q in quotas:
        who = owners_of(q.who)
        total, n = ZERO, 0
        for row in kept:
            if (
                row.owner_id in who
                and (row.currency or "").upper() == q.currency
                and row.close_date is not None
                and q.start <= row.close_date <= q.end
            ):
                total += amount_of(row)
                n += 1
        out.append(Coverage(q, total, n))
    return out
