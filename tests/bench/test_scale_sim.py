"""bench/scale_sim.py: the simulation behind docs/SCALING.md keeps the design's promises (one
queued and one running job per key, catch-up once, the crons' own fire counts) and its figures
move the way queues do, so the capacity plan it prints can be trusted."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    """bench/scale_sim.py, loaded from its file (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_scale_sim", ROOT / "bench/scale_sim.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SIM = _bench()
COSTS = SIM.Costs()
STMTS = SIM.Statements()


def run(fleet: object, workers: int, concurrency: int = 1, **kwargs: object) -> object:
    kwargs.setdefault("costs", COSTS)
    kwargs.setdefault("stmts", STMTS)
    kwargs.setdefault("seed", 7)
    return SIM.simulate(fleet, workers, concurrency, **kwargs)


def cron_count(cron: str, zone: str, start: datetime, hours: float) -> int:
    """Fires in [start, start + hours), counted by croniter alone (not crmsync's trigger)."""
    local = start.astimezone(ZoneInfo(zone))
    it = croniter(cron, local - timedelta(microseconds=1))
    end = start + timedelta(hours=hours)
    count = 0
    while it.get_next(datetime) < end:
        count += 1
    return count


def test_enough_workers_keep_latency_under_a_tick_plus_a_job() -> None:
    """With a slot for every key the only waits are for the tick (13 s here, not a divisor of
    a minute, so it shows) and a key's own running job."""
    fleet = SIM.Fleet(200, "same", hours=6)
    res = run(fleet, workers=200, concurrency=4, tick=13.0)
    longest = (COSTS.workflow_big[1] + COSTS.workflow_calls * COSTS.call_seconds) * (
        COSTS.slow_factor
    )
    lat = res.all_latencies()
    assert SIM.pct(lat, 0.95) < 13.0 + longest
    assert lat[-1] < 13.0 + longest
    assert lat[-1] > 0  # the tick's phase is visible: the waits are measured, not assumed zero
    assert res.coalesced == 0 and res.backlog_end == 0


def test_a_tick_defers_a_burst_one_key_after_another() -> None:
    """Slots to spare, 2,000 syncs due at once: the tick's cost per key queued (tick_due: its
    share of the marks' transaction and of the batch defer) spreads the burst, so the last key
    starts about 2,000 x tick_due late."""
    fleet = SIM.Fleet(2000, "same", hours=1)
    res = run(fleet, workers=1000, concurrency=4)
    spread = 2000 * COSTS.tick_due
    lat = sorted(res.latencies[SIM.SYNC])
    assert spread * 0.9 < lat[-1] < spread + COSTS.tick_fixed + COSTS.tick_scan * 6001 + 0.01
    before = COSTS.tick_fixed + COSTS.tick_scan * 6001  # reading the marks, checking each unit
    assert SIM.pct(lat, 0.5) == pytest.approx(before + spread / 2, rel=0.1)
    assert res.tick_longest == pytest.approx(
        COSTS.tick_fixed + COSTS.tick_scan * 6001 + 2000 * COSTS.tick_due
    )


@pytest.mark.parametrize("tick_first", [False, True])
def test_one_worker_for_1000_connections_lets_the_queue_grow(tick_first: bool) -> None:
    """1,000 syncs a minute at ~0.6 s each on one slot: the queue fills to one job per key and
    work is left at the end. The fires not run on their own are counted: refused by the
    queueing lock (a tick that jumps the queue finds the keys still waiting) or merged into one
    catch-up run (a FIFO tick, crmsync's, waits behind the queue and finds many fires passed)."""
    fleet = SIM.Fleet(1000, "same", sync_cron="* * * * *", hours=1)
    res = run(fleet, workers=1, costs=dataclasses.replace(COSTS, tick_first=tick_first))
    lat = res.all_latencies()
    assert res.max_depth == 1000  # bounded by the keys, however late it gets
    assert sum(res.jobs) + res.coalesced + res.merged == 1000 * 60  # every fire accounted for
    assert (res.merged if not tick_first else res.coalesced) > 50_000
    assert SIM.pct(lat, 0.95) > 600
    assert res.backlog_end > 400
    assert res.busy / (res.slots * res.seconds) > 0.99


def test_more_workers_never_raise_the_p95() -> None:
    """The latency falls as workers are added, the search picks the first that meets the goal."""
    fleet = SIM.Fleet(300, "same", hours=3)
    groups = SIM.schedule_groups(fleet)
    p95 = [SIM.pct(run(fleet, w, 2, groups=groups).all_latencies(), 0.95) for w in (1, 2, 4, 8)]
    assert p95 == sorted(p95, reverse=True) and p95[0] > p95[-1]
    runs: dict[int, object] = {}
    best = SIM.smallest(runs, lambda w: run(fleet, w, 2, groups=groups), target=30.0)
    assert SIM.pct(runs[best].all_latencies(), 0.95) < 30.0
    assert best == 1 or SIM.pct(runs[best - 1].all_latencies(), 0.95) >= 30.0


def test_a_key_has_one_queued_and_one_running_job_at_most() -> None:
    """Jobs longer than the cron's minute: the next one is deferred while the key runs, waits
    for it (lock), and a third fire finds it queued (queueing lock)."""
    costs = dataclasses.replace(
        COSTS, sync_quiet=(80.0, 100.0), sync_changed=(80.0, 100.0), slow_share=0.0
    )
    fleet = SIM.Fleet(20, "same", sync_cron="* * * * *", hours=1)
    res = run(fleet, workers=40, costs=costs, trace=True)
    by_key: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
    for key, deferred, _due, started, finished in res.trace:
        by_key[key].append((deferred, started, finished))
    waited_for_lock = 0
    for jobs in by_key.values():
        jobs.sort()
        for (_, s1, f1), (d2, s2, _) in itertools.pairwise(jobs):
            assert d2 >= s1, "two jobs of one key queued at once"
            assert s2 >= f1, "two jobs of one key ran at once"
            if d2 < f1:
                waited_for_lock += 1
                assert s2 == f1  # a free slot was there: it started when the key was let go
    assert waited_for_lock > 100
    assert res.coalesced > 100


def test_jobs_in_a_day_equal_the_crons_fire_counts() -> None:
    """Every sync key runs as often as its cron fires (96 a day for */15), every workflow as
    often as croniter counts its cron in the connection's zone, in both modes."""
    for mode in ("same", "spread"):
        fleet = SIM.Fleet(12, mode)
        res = run(fleet, workers=50, concurrency=2)
        assert (
            res.jobs[SIM.SYNC] == 12 * 96 == 12 * cron_count("*/15 * * * *", "UTC", fleet.day, 24)
        )
        zones = SIM.ZONES[1:2] if mode == "same" else SIM.ZONES
        expected = sum(
            cron_count(cron, zones[i % len(zones)], fleet.day, 24)
            for cron in SIM.WORKFLOW_CRONS
            for i in range(12)
        )
        assert res.jobs[SIM.WORKFLOW] == expected
        assert res.jobs[SIM.REPORT] == 1
        assert res.coalesced == 0 and res.merged == 0
    assert expected != 2 * 12  # spread zones: Tokyo's and Sydney's Monday is Sunday in UTC


def test_after_an_outage_each_key_catches_up_once() -> None:
    """Workers down 09:00-10:00 UTC: the first tick after defers one run per sync key for the
    five fires (09:00 to 10:00), due at the first of them."""
    fleet = SIM.Fleet(30, "same", hours=12)
    res = run(fleet, workers=8, concurrency=4, outage=(9 * 3600.0, 10 * 3600.0), trace=True)
    assert res.merged == 4 * 30
    assert res.jobs[SIM.SYNC] == (48 - 4) * 30
    late = [t for t in res.trace if t[0] < 30 and t[2] == 9 * 3600.0]
    assert len(late) == 30 and all(t[3] >= 10 * 3600.0 for t in late)


def test_the_same_seed_gives_the_same_day() -> None:
    """Deterministic for a seed; another seed draws other job times."""
    fleet = SIM.Fleet(100, "spread", hours=4)
    a, b, c = run(fleet, 1, 2), run(fleet, 1, 2), run(fleet, 1, 2, seed=8)
    assert a.latencies == b.latencies and a.busy == b.busy and a.statements == b.statements
    assert a.busy != c.busy


def test_statements_add_up_from_the_per_job_counts() -> None:
    """The PostgreSQL estimate is the per-job counts times the jobs, plus the ticks, plus the
    workers' background (heartbeats, polls)."""
    fleet = SIM.Fleet(5, "same", hours=2)
    res = run(fleet, workers=3, concurrency=2)
    ticks = 2 * 3600 / 15
    expected = (
        ticks * (STMTS.defer + STMTS.fetch + STMTS.finish + STMTS.tick)
        + res.jobs[SIM.SYNC] * (STMTS.defer + STMTS.mark + STMTS.fetch + STMTS.finish + STMTS.sync)
        + res.jobs[SIM.WORKFLOW] * (STMTS.defer + STMTS.mark + STMTS.fetch + STMTS.finish)
        + res.jobs[SIM.WORKFLOW] * STMTS.workflow
    )
    background = 3 * STMTS.worker_per_second * 2 * 3600
    assert sum(s * 60 for s in res.statements) == pytest.approx(expected + background)


def test_api_calls_follow_the_schedule() -> None:
    """*/15 is 96 syncs a day; on a Monday both shipped workflows run once in New York."""
    syncs, flows, calls = SIM.calls_per_day(SIM.Fleet(1), COSTS)
    assert (syncs, flows) == (96, 2)
    assert calls == 96 * COSTS.sync_calls + 2 * COSTS.workflow_calls
    syncs, _, _ = SIM.calls_per_day(SIM.Fleet(1, sync_cron="*/5 9-17 * * *"), COSTS)
    assert syncs == 9 * 12


def test_set_reads_numbers_ranges_and_switches() -> None:
    """--set NAME=VALUE: a number keeps its field's type, a range is lo,hi, a switch is a word
    (so `tick_first=false` is false, not the truthy string)."""
    costs = SIM.override(COSTS, "sync_quiet", "0.1,0.3")
    costs = SIM.override(costs, "tick_first", "false")
    costs = SIM.override(costs, "sync_calls", "4")
    assert costs.sync_quiet == (0.1, 0.3) and costs.tick_first is False and costs.sync_calls == 4
    assert SIM.override(COSTS, "tick_first", "true").tick_first is True
    assert SIM.override(STMTS, "sync", "30").sync == 30
