"""One deal's life, drawn the same way for both CRMs: outcome, stage path, dates, amounts, activity.

The Salesforce and HubSpot generators each render these plans in their own wire format; the
relative whole-second clock (`Time`) and the pipeline shapes they need live here too.
"""

from __future__ import annotations

import math
from bisect import bisect
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache, cached_property
from typing import Any

from crmsync.sandbox.generator.rates import (
    P_ABSURD_AMOUNT,
    P_BAD_PROBABILITY,
    P_MISSING_AMOUNT,
    P_PAST_CLOSE,
    P_WON_NO_AMOUNT,
)

DAY = 86_400
_BACK_DAYS = 3_000  # relative times count from midnight this many days before `now`
_AHEAD_DAYS = 1_500
_MAX_AGE = 730 * DAY  # deals are created over the last two years

OPEN, WON, LOST = 0, 1, 2
# event kinds in a deal plan
EV_STAGE, EV_CLOSE_DATE, EV_AMOUNT, EV_CLOSE = 0, 1, 2, 3
CURRENCIES = ("USD", "EUR", "GBP", "JPY")
_CURRENCY_CUM = (0.85, 0.93, 0.98, 1.0)
_PUSH_CUM = (0.55, 0.80, 0.89, 0.94, 0.97, 0.99, 1.0)  # 0..6 close-date pushes
_AMOUNT_CHANGE_CUM = (0.70, 0.90, 0.97, 1.0)  # 0..3 amount changes


def _cum(weights: Sequence[float]) -> tuple[float, ...]:
    total = float(sum(weights))
    acc = 0.0
    out = []
    for w in weights:
        acc += w
        out.append(acc / total)
    out[-1] = 1.0
    return tuple(out)


@cache
def _time_of_day(suffix: str) -> tuple[str, ...]:
    """`THH:MM:SS` + suffix for every second of a day, indexed by the second."""
    return tuple(
        f"T{h:02d}:{m:02d}:{s:02d}{suffix}" for h in range(24) for m in range(60) for s in range(60)
    )


class Time:
    """Relative whole-second clock: t = seconds since midnight `_BACK_DAYS` days before now."""

    def __init__(self, now: datetime) -> None:
        now_epoch = math.floor(now.timestamp())
        self.base_epoch = (now_epoch // DAY - _BACK_DAYS) * DAY
        self.base = datetime.fromtimestamp(self.base_epoch, UTC)
        self.now_t = now_epoch - self.base_epoch
        self.now_day = self.now_t // DAY
        first = self.base.date()
        self.days: list[str] = [
            date.fromordinal(first.toordinal() + d).isoformat()
            for d in range(_BACK_DAYS + _AHEAD_DAYS)
        ]
        self.sf_tod = _time_of_day(".000+0000")

    # HubSpot's tables are made on first use: a Salesforce-only stream never needs them
    @cached_property
    def hs_days(self) -> list[str]:
        return [d + "T00:00:00.000Z" for d in self.days]

    @cached_property
    def hs_tod(self) -> tuple[str, ...]:
        return _time_of_day(".000Z")

    def sf(self, t: int) -> str:
        return self.days[t // DAY] + self.sf_tod[t % DAY]

    def hs(self, t: int) -> str:
        return self.days[t // DAY] + self.hs_tod[t % DAY]

    def dt(self, t: int) -> datetime:
        return self.base + timedelta(seconds=t)


class Shape:
    """A pipeline's statistical shape: open-stage count and outcome/stage distributions.

    Stage indexes: 0..k-1 the open stages in order, k closed won, k+1 closed lost.
    """

    __slots__ = ("fill", "k", "lost_cum", "open_cum", "p_open", "p_won")

    def __init__(
        self,
        k: int,
        p_open: float,
        p_won: float,
        open_weights: Sequence[float],
        lost_weights: Sequence[float],
    ) -> None:
        self.k = k
        self.p_open = p_open
        self.p_won = p_won
        self.open_cum = _cum(open_weights)
        self.lost_cum = _cum(lost_weights)
        # share of qualification fields filled, by highest open stage reached (closed won: 1.0)
        self.fill = (*(0.15 + 0.8 * i / max(1, k - 1) for i in range(k)), 1.0)


DealPlan = tuple[
    int, int, int, int, int, list[tuple[int, int, Any]], int, float | None, int, int | None, int
]


def plan_deal(
    rnd: Callable[[], float], gauss: Callable[[float, float], float], shape: Shape, now_t: int
) -> DealPlan:
    """One deal's life: outcome, creation time, first stage, time-ordered changes and activity.

    Returns (outcome, reached, start_stage, created, last_stage_t, events, close0, amount0,
    currency, activity_t, bad_probability) where events are (t, kind, value) sorted by time:
    EV_STAGE stage index, EV_CLOSE_DATE new close day, EV_AMOUNT new amount, EV_CLOSE closing
    stage index (the close date becomes the day of t).
    """
    k = shape.k
    u = rnd()
    if u < shape.p_open:
        outcome = OPEN
        target = bisect(shape.open_cum, rnd())
    elif u < shape.p_open + shape.p_won:
        outcome = WON
        target = k - 1 if k < 2 or rnd() < 0.9 else k - 2
    else:
        outcome = LOST
        target = bisect(shape.lost_cum, rnd())
    start = 1 if target >= 1 and rnd() < 0.25 else 0
    path: list[int] = []
    cur, regressed = start, 0
    while cur < target:
        r = rnd()
        if r < 0.05 and cur > start and regressed < 2:
            cur -= 1
            regressed += 1
        elif r < 0.13 and cur + 2 <= target:
            cur += 2
        else:
            cur += 1
        path.append(cur)

    # timing
    if outcome == OPEN:
        u = rnd()
        created = now_t - 3600 - int(_MAX_AGE * u * u * u)
        upper = now_t - 1
        span = max(2, int((now_t - created) * math.sqrt(rnd())))
        times = sorted([created + 1 + int((span - 1) * rnd()) for _ in path])
        end = created
    else:
        cycle = int(DAY * min(400.0, max(2.0, math.exp(gauss(4.1, 0.6)))))
        created = now_t - cycle - int((_MAX_AGE - cycle) * rnd())  # cycle <= 400 days
        end = created + cycle
        upper = end - 1
        times = sorted([created + 1 + int((cycle - 2) * rnd()) for _ in path])
        path.append(k if outcome == WON else k + 1)
        times.append(end)
    events: list[tuple[int, int, Any]] = [
        (t, EV_STAGE, s) for t, s in zip(times, path, strict=True)
    ]
    if outcome != OPEN:
        events[-1] = (end, EV_CLOSE, path[-1])
    last_stage_t = times[-1] if times else created

    # close dates: the final (planned) one, then earlier ones backwards, one per push
    created_day = created // DAY
    now_day = now_t // DAY
    if outcome == OPEN:
        if rnd() < P_PAST_CLOSE:
            final = now_day - 1 - int(120 * rnd() * rnd())
        else:
            final = now_day + int(180 * rnd() * rnd())
    else:
        final = max(created_day + 1, end // DAY - 20 + int(50 * rnd()))
    dates = [final]
    for _ in range(bisect(_PUSH_CUM, rnd())):
        prev = dates[-1] - 7 - int(50 * rnd())
        if prev <= created_day:
            break
        dates.append(prev)
    dates.reverse()
    close0 = dates[0]
    if len(dates) > 1:
        lo, hi = created + 1, upper
        push_times = []
        for d in dates[:-1]:  # pushed around the time the old date came due
            t = d * DAY + int((13 * rnd() - 10) * DAY)
            if t < lo:
                t = lo + int((hi - lo) * 0.1 * rnd())
            elif t > hi:
                t = hi - int((hi - lo) * 0.2 * rnd())
            push_times.append(t)
        push_times.sort()
        events += [(t, EV_CLOSE_DATE, d) for t, d in zip(push_times, dates[1:], strict=True)]

    # amount and currency
    r = rnd()
    c = bisect(_CURRENCY_CUM, rnd())
    scale = 150.0 if c == 3 else 1.0
    amount0: float | None
    p_missing = P_WON_NO_AMOUNT if outcome == WON else P_MISSING_AMOUNT
    if r < p_missing:
        amount0 = None
    else:
        base = max(500.0, math.exp(gauss(10.46, 0.85))) * scale
        if r < p_missing + P_ABSURD_AMOUNT:
            v = rnd()
            amount0 = 0.01 if v < 0.34 else 1.0e10 if v < 0.67 else -round(base, -2)
        else:
            amount0 = round(base, 2) if rnd() < 0.1 else round(base, -2)
            changes = bisect(_AMOUNT_CHANGE_CUM, rnd())
            if changes:
                span_a = upper - created
                amt = amount0
                for t in sorted([created + 1 + int(span_a * rnd()) for _ in range(changes)]):
                    new = round(amt * (0.6 + 0.8 * rnd()), -2)
                    if new == amt or new <= 0:
                        new = amt + 100.0 * scale
                    events.append((t, EV_AMOUNT, new))
                    amt = new
    if len(events) > 1:
        events.sort()

    # last activity
    age = now_t - created
    r = rnd()
    act: int | None
    if outcome == OPEN:
        if r < 0.07:
            act = None
        elif r < 0.27 and age > 31 * DAY:  # stale: no touch for more than 30 days
            act = now_t - 31 * DAY - int((age - 31 * DAY) * rnd())
        else:
            v = rnd()
            act = now_t - int(min(30 * DAY, age) * v * v)
    else:
        act = None if r < 0.05 else max(created, end - int(10 * DAY * rnd()))
    bad_prob = 1 if outcome == OPEN and rnd() < P_BAD_PROBABILITY else 0
    return (
        outcome,
        target,
        start,
        created,
        last_stage_t,
        events,
        close0,
        amount0,
        c,
        act,
        bad_prob,
    )


def count_people(n: int) -> int:
    return min(400, max(5, round(n / 30)))


def count_companies(n: int) -> int:
    return max(3, round(n / 4))
