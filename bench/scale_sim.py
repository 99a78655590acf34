"""One day of crmsync's schedules on N equal Procrastinate workers, simulated (issue 19).

A discrete-event simulation of the design in docs/SCALING.md, for capacity planning without
10,000 CRMs. Each connection has one sync key on its cron (service.timezone) and two workflow
keys on the shipped workflows' crons in the connection's time zone; the report runs once a day.
A tick (queued every --tick seconds, one waiting at a time, a job in the FIFO queue like the
others, as crmsync.service.queue defers it) defers every key whose next fire time has passed
since its mark, once however many fires it missed, in one batch (compare-and-sets and
a defer each, timed on PostgreSQL); the queueing lock refuses a second queued job per key
(counted as coalesced), the lock keeps a key's queued job waiting while the key runs. Free
slots take the oldest ready job. Due times come from crmsync.schedule.cron_trigger, so the
fires are the real schedules'. Job times are drawn (seeded) from the costs measured on the
sandbox (design of issue 19), plus an assumed network round trip per API call, which the
sandbox does not have: all of them parameters (--set). Slots are equal: the CPU a burst needs
is printed (cpu_cores), not enforced per process.

Modes: `same`: every connection on the same sync cron, every workflow in one time zone (the
worst burst); `spread`: sync minutes staggered over the cron's step (`3-59/15 * * * *`), the
workflows' time zones spread over six zones.

Prints, per connection count, mode and worker count: jobs, jobs per second (mean, busiest
minute), jobs coalesced, queue latency (due -> started) p50/p95/p99/max, slot utilisation, CPU
cores (mean, busiest minute), the deepest queue, the backlog at midnight, PostgreSQL statements
per second (mean, busiest minute), the longest tick, fires merged into catch-up runs; the smallest
worker count whose p95 stays under --target; and the API calls per connection per day against
each CRM's daily allowance. Simulated time, so the figures do not depend on the machine.

    .venv/bin/python bench/scale_sim.py [--connections 100 1000 10000] [--workers 1 2 4 8 16 32]
        [--concurrency 4] [--mode same spread] [--seed 7] [--set call_seconds=0.1 ...]
        [--sync-cron '*/5 * * * *'] [--outage 540 600] [--target 60]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import functools
import heapq
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from crmsync.schedule import cron_trigger

DAY = 86_400.0
SYNC, WORKFLOW, REPORT = 0, 1, 2
KINDS = ("sync", "workflow", "report")
ZONES = (
    "America/Los_Angeles",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Australia/Sydney",
)
# The shipped workflows' schedules (workflows/*.yaml): the crons, not their zones.
WORKFLOW_CRONS = ("0 7 * * 1-5", "0 8 * * 1")
# Keys that share a schedule (fire times, keys), and each key's kind.
P = TypeVar("P", "Costs", "Statements")
# A queued job: (seq, key, due, seconds, cpu seconds, deferred at).
Job = tuple[int, int, float, float, float, float]
Groups = tuple[list[tuple[list[float], list[int]]], list[int]]
# Daily API allowances, per org or portal (docs/SCALING.md cites where they come from).
ALLOWANCES = (
    ("Salesforce Developer Edition", 15_000),
    ("Salesforce Enterprise, base (+1,000 a user licence)", 100_000),
    ("HubSpot Free/Starter", 250_000),
    ("HubSpot Professional", 625_000),
    ("HubSpot Enterprise", 1_000_000),
)


@dataclass(frozen=True)
class Costs:
    """Seconds and API calls per job. Ranges are drawn uniformly; the sandbox measured them on
    a 2-core machine (design of issue 19); call_seconds is an assumption, not a measurement."""

    sync_quiet: tuple[float, float] = (0.05, 0.2)  # incremental, nothing changed
    sync_changed: tuple[float, float] = (0.2, 0.4)  # incremental with ~50 changed deals
    changed_share: float = 0.1  # share of syncs that find changes
    workflow_small: tuple[float, float] = (0.05, 0.15)  # evaluation at 1k deals
    workflow_big: tuple[float, float] = (0.5, 1.0)  # evaluation at 10k deals
    big_share: float = 0.1  # share of connections with 10k deals (the rest have 1k)
    report_seconds: float = 5.0
    # The tick (crmsync.service.tick), measured on local PostgreSQL: reading marks and quota,
    # then per unit the due check, per due unit the mark's compare-and-set and the defer.
    tick_fixed: float = 0.05
    tick_scan: float = 3e-6  # per unit, due or not (10,000 not due: 28 ms)
    # per due unit: the marks moved in one transaction and the jobs deferred in one batch (10,000
    # keys due at once: 3.6 s on local PostgreSQL; one at a time it was 1.9 ms a key)
    tick_due: float = 0.36e-3
    tick_first: bool = False  # the tick jumps the queue (a priority); crmsync queues it FIFO
    call_seconds: float = 0.25  # a CRM round trip per API call (assumed)
    sync_calls: int = 2  # per object: query + history (SF), search + archived read (HubSpot)
    workflow_calls: int = 3  # live: changed-since query, flag batch, task batch; shadow: 0
    slow_share: float = 0.01  # jobs that meet a slow CRM ...
    slow_factor: float = 10.0  # ... and take this many times longer


@dataclass(frozen=True)
class Statements:
    """PostgreSQL statements per job and per worker. sync and workflow were counted on the
    store's engine for one queue job (QueueWorker.run_unit, sandbox, 1,000 deals, shadow mode);
    Procrastinate's are one call each; the rest are estimates (docs/SCALING.md)."""

    defer: int = 1  # procrastinate_defer_jobs (its trigger NOTIFYs)
    refused: int = 1  # a defer refused by the queueing lock
    fetch: int = 1  # procrastinate_fetch_job
    finish: int = 1  # procrastinate_finish_job
    mark: int = 1  # per deferred key: the schedule mark's compare-and-set
    tick: int = 2  # per tick: read the marks, the quota blocks
    sync: int = 26  # counted: incremental, nothing changed (SF and HubSpot alike)
    workflow: int = 18  # counted: 16-19 in shadow mode; live adds the outbox's claims and moves
    report: int = 20  # estimate
    worker_per_second: float = 0.8  # heartbeat 1/10 s, idle and abort polls 1/5 s, periodic
    # defers (tick, stalled), the queue-depth watch 1/5 s


@dataclass(frozen=True)
class Fleet:
    """The connections and their schedules."""

    connections: int
    mode: str = "spread"  # or "same"
    sync_cron: str = "*/15 * * * *"
    timezone: str = "UTC"  # service.timezone, the sync crons' zone
    day: datetime = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday: both workflows fire
    hours: float = 24.0  # how much of the day to replay (tests replay less)

    @property
    def seconds(self) -> float:
        return self.hours * 3600


@dataclass
class Result:
    """What one simulated day measured."""

    slots: int
    seconds: float  # the replayed span
    jobs: list[int] = field(default_factory=lambda: [0, 0, 0])
    latencies: list[list[float]] = field(default_factory=lambda: [[], [], []])
    coalesced: int = 0  # defers refused by the queueing lock
    merged: int = 0  # fires merged into one catch-up run of the same key
    busy: float = 0.0  # slot-seconds spent in jobs and ticks
    max_depth: int = 0  # todo jobs at the deepest
    backlog_end: int = 0  # todo jobs at midnight
    tick_longest: float = 0.0  # seconds, the longest tick
    per_minute: list[int] = field(default_factory=list)  # jobs started per minute
    cores: list[float] = field(default_factory=list)  # CPU demand per minute, in cores
    statements: list[float] = field(default_factory=list)  # per minute
    trace: list[tuple[int, float, float, float, float]] = field(default_factory=list)

    def all_latencies(self) -> list[float]:
        return sorted(x for kind in self.latencies for x in kind)


def fire_times(cron: str, timezone: str, start: datetime, seconds: float) -> list[float]:
    """The cron's fire times in [start, start + seconds), as seconds after start, read by
    crmsync's own trigger (cron's day numbering, time zones, DST)."""
    trigger = cron_trigger(cron, timezone)
    end = start + timedelta(seconds=seconds)
    out: list[float] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < end:
        out.append((fire - start).total_seconds())
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return out


def spread_crons(cron: str) -> list[str]:
    """`*/M ...` staggered over its M minutes: `0-59/M ...`, `1-59/M ...`, ..."""
    minute, *rest = cron.split()
    if not minute.startswith("*/"):
        raise SystemExit(f"spread mode needs a '*/M' minute field, got {cron!r}")
    step = int(minute[2:])
    return [" ".join([f"{o}-59/{step}", *rest]) for o in range(step)]


def schedule_groups(fleet: Fleet) -> Groups:
    """Keys that share a schedule, with its fire times in the day; and each key's kind.
    Keys 0..n-1 are the syncs, then the workflows, then the report."""
    n = fleet.connections
    syncs = [fleet.sync_cron] if fleet.mode == "same" else spread_crons(fleet.sync_cron)
    zones = ZONES[1:2] if fleet.mode == "same" else ZONES
    members: dict[tuple[str, str], list[int]] = {}
    for i in range(n):
        members.setdefault((syncs[i % len(syncs)], fleet.timezone), []).append(i)
    for w, cron in enumerate(WORKFLOW_CRONS):
        for i in range(n):
            members.setdefault((cron, zones[i % len(zones)]), []).append(n + w * n + i)
    report = n + len(WORKFLOW_CRONS) * n
    members[("0 6 * * *", fleet.timezone)] = [report]
    kinds = [SYNC] * n + [WORKFLOW] * (len(WORKFLOW_CRONS) * n) + [REPORT]
    groups = [
        (fire_times(c, z, fleet.day, fleet.seconds), keys) for (c, z), keys in members.items()
    ]
    return [g for g in groups if g[0]], kinds


def simulate(
    fleet: Fleet,
    workers: int,
    concurrency: int,
    costs: Costs,
    stmts: Statements,
    seed: int,
    tick: float = 15.0,
    trace: bool = False,
    groups: Groups | None = None,
    outage: tuple[float, float] | None = None,
) -> Result:
    """Run one day (and drain what is queued at midnight); `trace` keeps (key, deferred, due,
    started, finished) for every job. During `outage` (seconds after midnight, from, to) no
    worker runs: jobs already running finish, nothing starts, no tick defers."""
    sched, kinds = groups if groups is not None else schedule_groups(fleet)
    rng = random.Random(seed)
    n, nkeys = fleet.connections, len(kinds)
    big = [rng.random() < costs.big_share for _ in range(n)]
    sync_extra = costs.sync_calls * costs.call_seconds
    wf_extra = costs.workflow_calls * costs.call_seconds
    per_job = [
        stmts.fetch + stmts.finish + stmts.sync,
        stmts.fetch + stmts.finish + stmts.workflow,
        stmts.fetch + stmts.finish + stmts.report,
    ]

    rnd = rng.random
    changed, quiet, changed_share = costs.sync_changed, costs.sync_quiet, costs.changed_share
    slow_share, slow_factor = costs.slow_share, costs.slow_factor

    def duration(key: int) -> tuple[float, float]:
        """Wall seconds, and the CPU part (the sandbox-measured time, without the waits
        for the CRM, which a slow CRM stretches)."""
        kind = kinds[key]
        if kind == SYNC:
            lo, hi = changed if rnd() < changed_share else quiet
            cpu, wait = lo + (hi - lo) * rnd(), sync_extra
        elif kind == WORKFLOW:
            lo, hi = costs.workflow_big if big[(key - n) % n] else costs.workflow_small
            cpu, wait = lo + (hi - lo) * rnd(), wf_extra
        else:
            cpu, wait = costs.report_seconds, 0.0
        seconds = cpu + wait
        return (seconds * slow_factor if rnd() < slow_share else seconds), cpu

    slots = workers * concurrency
    res = Result(slots=slots, seconds=fleet.seconds)
    span = fleet.seconds
    minutes = math.ceil(span / 60)  # per-minute figures cover the day, not the drain after it
    started = [0] * minutes
    cores = [0.0] * minutes  # CPU seconds of the jobs started each minute, per second
    sql = [0.0] * minutes
    ptr = [0] * len(sched)
    queued, busy = bytearray(nkeys), bytearray(nkeys)
    ready: deque[Job] = deque()  # (seq, key, due, dur, cpu, deferred at); key -1: the tick
    released: list[Job] = []  # heap: let go by their key's lock, by seq
    blocked: dict[int, Job] = {}
    running: list[tuple[float, int, int]] = []  # heap: (finish, seq, key); key -1: a tick
    # the defers of the ticks under way, each tick's in time order: (at, key, due)
    arriving: list[deque[tuple[float, int, float]]] = []
    free, seq, next_tick, midnight, tick_waits = slots, 0, 0.0, False, False
    down_from, down_to = outage or (-1.0, -1.0)

    def run_tick(now: float) -> float:
        """The tick job started at `now`: the units due, each deferred after the ones before
        it (one compare-and-set and one defer each); returns how long the tick runs."""
        at = now + costs.tick_fixed + costs.tick_scan * nkeys
        batch: deque[tuple[float, int, float]] = deque()
        for g, (fires, keys) in enumerate(sched):
            p = ptr[g]
            if p >= len(fires) or fires[p] > now:
                continue
            first = fires[p]
            while p < len(fires) and fires[p] <= now:
                p += 1
            res.merged += (p - ptr[g] - 1) * len(keys)
            ptr[g] = p
            for key in keys:
                at += costs.tick_due
                batch.append((at, key, first))
        if batch:
            arriving.append(batch)
        res.tick_longest = max(res.tick_longest, at - now)
        return at - now

    refused_cost, defer_cost = stmts.refused + stmts.mark, stmts.defer + stmts.mark

    def arrive(now: float, key: int, due: float) -> None:
        """One defer: refused while the key waits in the queue (queueing lock)."""
        nonlocal seq
        m = int(now // 60) if now < span else minutes - 1
        if queued[key]:
            res.coalesced += 1
            sql[m] += refused_cost
            return
        queued[key] = 1
        seq += 1
        dur, cpu = duration(key)
        job = (seq, key, due, dur, cpu, now)
        sql[m] += defer_cost
        if busy[key]:
            blocked[key] = job
        else:
            ready.append(job)
        depth = len(ready) + len(released) + len(blocked) - tick_waits
        if depth > res.max_depth:
            res.max_depth = depth

    while True:
        finish = running[0][0] if running else math.inf
        comes, source = math.inf, None
        for batch in arriving:  # one tick at a time, mostly; two when one outlasts a period
            if batch[0][0] < comes:
                comes, source = batch[0][0], batch
        if next_tick < span and next_tick < finish and next_tick < comes:
            now = next_tick
            next_tick += tick
            if not tick_waits and not down_from <= now < down_to:
                tick_waits = True  # the periodic defer; one waits at a time (queueing lock)
                seq += 1
                if costs.tick_first:
                    ready.appendleft((0, -1, now, 0.0, 0.0, now))
                else:
                    ready.append((seq, -1, now, 0.0, 0.0, now))
        elif source is not None and comes <= finish:
            now, key, due = source.popleft()
            if not source:
                arriving.remove(source)
            arrive(now, key, due)
        elif running:
            now, _, key = heapq.heappop(running)
            free += 1
            if key >= 0:
                busy[key] = 0
                job = blocked.pop(key, None)
                if job is not None:
                    heapq.heappush(released, job)
        else:
            break
        if now >= span and not midnight:
            midnight = True
            res.backlog_end = len(ready) + len(released) + len(blocked) - tick_waits
        while free and not down_from <= now < down_to:  # down: nothing starts
            if released and (not ready or released[0][0] < ready[0][0]):
                job = heapq.heappop(released)
            elif ready:
                job = ready.popleft()
            else:
                break
            seqno, key, due, dur, cpu, at = job
            free -= 1
            m = int(now // 60) if now < span else -1
            if key < 0:
                tick_waits = False
                if m >= 0:
                    sql[m] += stmts.defer + stmts.fetch + stmts.finish + stmts.tick
                took = run_tick(now)
                res.busy += max(0.0, min(now + took, span) - now)
                heapq.heappush(running, (now + took, seqno, -1))
                continue
            queued[key], busy[key] = 0, 1
            kind = kinds[key]
            res.jobs[kind] += 1
            res.latencies[kind].append(now - due)
            res.busy += dur if now + dur <= span else (span - now if now < span else 0.0)
            if m >= 0:
                started[m] += 1
                cores[m] += cpu / 60
                sql[m] += per_job[kind]
            heapq.heappush(running, (now + dur, seqno, key))
            if trace:
                res.trace.append((key, at, due, now, now + dur))
    res.per_minute = started
    res.cores = cores
    res.statements = [s / 60 + workers * stmts.worker_per_second for s in sql]
    return res


def run_day(
    fleet: Fleet,
    groups: Groups,
    concurrency: int,
    costs: Costs,
    stmts: Statements,
    seed: int,
    tick: float,
    outage: tuple[float, float] | None,
    workers: int,
) -> Result:
    """simulate() with the worker count last, for the search."""
    return simulate(
        fleet, workers, concurrency, costs, stmts, seed, tick, groups=groups, outage=outage
    )


def pct(values: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def row(res: Result, workers: int, concurrency: int) -> str:
    """One line of the table: throughput, latency, load."""
    lat = res.all_latencies()
    jobs = sum(res.jobs)
    util = res.busy / (res.slots * res.seconds)
    cores = sum(res.cores) / len(res.cores)
    stmts = sum(res.statements) / len(res.statements)
    return (
        f"  {workers:>4d} x {concurrency:<2d} jobs={jobs:>8d}  jobs/s={jobs / res.seconds:6.2f} "
        f"peak={max(res.per_minute) / 60:6.1f}  coalesced={res.coalesced:>7d}  latency s "
        f"p50={pct(lat, 0.5):7.1f} p95={pct(lat, 0.95):7.1f} p99={pct(lat, 0.99):7.1f} "
        f"max={lat[-1] if lat else 0:7.1f}  util={util:4.0%}  "
        f"cpu_cores={cores:4.1f} peak={max(res.cores):5.1f}  "
        f"depth_max={res.max_depth:>6d} backlog_midnight={res.backlog_end:>6d}  "
        f"pg_stmt/s={stmts:6.1f} peak={max(res.statements):7.1f}  "
        f"tick_longest={res.tick_longest:5.1f}"
        + (f"  merged_fires={res.merged}" if res.merged else "")
    )


def smallest(run: dict[int, Result], sim: Callable[[int], Result], target: float) -> int | None:
    """The fewest workers whose p95 latency is under target: doubling, then bisection."""

    def ok(w: int) -> bool:
        if w not in run:
            run[w] = sim(w)
        return pct(run[w].all_latencies(), 0.95) < target

    low, high = 0, 1
    while not ok(high):
        low, high = high, high * 2
        if high > 4096:
            return None
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if ok(mid) else (mid, high)
    return high


def calls_per_day(fleet: Fleet, costs: Costs) -> tuple[int, int, int]:
    """Syncs, workflow runs and API calls of one connection in the day (workflows in New
    York time), from the schedules."""
    syncs = len(fire_times(fleet.sync_cron, fleet.timezone, fleet.day, DAY))
    flows = sum(len(fire_times(c, ZONES[1], fleet.day, DAY)) for c in WORKFLOW_CRONS)
    return syncs, flows, syncs * costs.sync_calls + flows * costs.workflow_calls


def api_calls(fleet: Fleet, costs: Costs) -> None:
    """API calls per connection per day from the schedule, against the daily allowances."""
    syncs, flows, calls = calls_per_day(fleet, costs)
    print(
        f"API calls per connection per day: {syncs} syncs x {costs.sync_calls} + {flows} "
        f"workflow runs x {costs.workflow_calls} = {calls} (sync cron {fleet.sync_cron!r})"
    )
    for name, allowance in ALLOWANCES:
        print(
            f"  {name:52s} {allowance:>9,d}/day: one connection uses {calls / allowance:6.2%}; "
            f"{int(allowance * 0.8 // calls):>5d} connections fit in one org's 80% quota_share"
        )


def block(
    what: tuple[int, str],
    args: argparse.Namespace,
    costs: Costs,
    stmts: Statements,
    outage: tuple[float, float] | None,
) -> str:
    """The table of one connection count and mode: the asked worker counts and the smallest
    that meets the target (searched)."""
    n, mode = what
    fleet = Fleet(n, mode, args.sync_cron)
    c = args.concurrency
    sim = functools.partial(
        run_day, fleet, schedule_groups(fleet), c, costs, stmts, args.seed, args.tick, outage
    )
    runs: dict[int, Result] = {}
    best = smallest(runs, sim, args.target)
    lines = [f"{n} connections, {mode}: sync {args.sync_cron!r}, workflows {WORKFLOW_CRONS}"]
    for w in sorted(set(args.workers) | ({best} if best else set())):
        if w not in runs:
            runs[w] = sim(w)
        lines.append(row(runs[w], w, c) + ("  <- smallest" if w == best else ""))
    lines.append(
        f"  smallest worker count with p95 < {args.target:g} s: "
        f"{best if best else 'over 4096'} (x {c} = {(best or 0) * c} slots)"
    )
    return "\n".join(lines)


def override(params: P, name: str, value: str) -> P:
    """`params` with one field set from text: a number, `lo,hi` for a range, true/false."""
    old = getattr(params, name)
    new: Any
    if isinstance(old, bool):
        new = value.strip().lower() in ("1", "true", "yes", "on")
    elif isinstance(old, tuple):
        new = tuple(float(v) for v in value.split(","))
    else:
        new = type(old)(value)
    return dataclasses.replace(params, **{name: new})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", "-n", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--workers", "-w", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--concurrency", "-c", type=int, default=4)
    parser.add_argument("--mode", nargs="+", choices=("same", "spread"), default=["same", "spread"])
    parser.add_argument("--sync-cron", default="*/15 * * * *")
    parser.add_argument("--tick", type=float, default=15.0, help="service.tick_seconds")
    parser.add_argument("--target", type=float, default=60.0, help="p95 latency goal, seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, help="processes simulating at once (default: CPUs)")
    parser.add_argument(
        "--outage",
        type=float,
        nargs=2,
        metavar=("FROM", "TO"),
        help="minutes after midnight UTC during which every worker is down (catch-up after)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a cost or statement count, e.g. call_seconds=0.1, workflow_statements=20",
    )
    args = parser.parse_args()
    costs, stmts = Costs(), Statements()
    for item in args.set:
        name, _, value = item.partition("=")
        stmt = name.removesuffix("_statements")
        if stmt != name and stmt in Statements.__annotations__:
            stmts = override(stmts, stmt, value)
        elif name in Costs.__annotations__:
            costs = override(costs, name, value)
        else:
            raise SystemExit(f"--set: unknown parameter {name!r}")
    outage = (args.outage[0] * 60, args.outage[1] * 60) if args.outage else None
    print(f"costs: {costs}\nstatements: {stmts}\ntick={args.tick:g} s seed={args.seed}")
    if outage:
        print(f"every worker down from minute {args.outage[0]:g} to {args.outage[1]:g} (UTC)")
    clock = time.perf_counter()
    blocks = [(n, mode) for n in args.connections for mode in args.mode]
    task = functools.partial(block, args=args, costs=costs, stmts=stmts, outage=outage)
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for text in pool.map(task, blocks):  # in order, as each block is done
            print(text, flush=True)
    api_calls(Fleet(1, sync_cron=args.sync_cron), costs)
    print(f"simulated in {time.perf_counter() - clock:.1f} s")


if __name__ == "__main__":
    main()
