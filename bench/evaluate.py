"""Workflow evaluation speed and memory: both shipped workflows over N generated opportunities.

Data: a seeded, streamed Salesforce-shaped generator (native stage names mapped to canonical ones
by connectors/salesforce.yaml; 0-8 history rows per deal: stage moves, close-date pushes, amount
and next-step changes; missing fields, inactive owners, past close dates, odd amounts). Nothing
is kept between deals, so the generator itself is memory-flat.

Prints, per size:

* `generator`: the generator alone (iterated, nothing evaluated): opportunities per second;
* `stream <workflow>`: `evaluate_stream` fed by the generator, `on_firing` counting firings
  (tasks and flags are built, as `crmsync plan` builds them, then dropped). `opps_per_s` includes
  the generator; `engine_opps_per_s` leaves out the time spent inside the generator (measured
  around each item it yields). When a rule needs stage durations, the first pass that fills them
  (as `evaluate` does) is timed on its own line;
* `prebuilt <workflow>`: `evaluate_stream` over the first 100,000 (at most) deals built in
  memory beforehand: the engine's own speed, without the generator's work and garbage
  interleaved (not memory-flat, so it runs after the memory figures);
* `store load`: the same data written into a temporary SQLite store with `apply_batch`, 2,000
  opportunities a batch (the "generated store"): seconds and rows;
* `store <workflow>`: `evaluate(...)` reading that store, as `crmsync plan` runs it (both passes),
  and `store read`: `with_history` alone, the reading cost;
* memory, each part in a fresh process: `rss_start_mb` (after imports and loading the workflows)
  and `rss_peak_mb` (the process's peak); `rss_growth_mb` and `blocks_growth` (allocated
  interpreter blocks) from the first to the last of ten checkpoints through the stream; and, up
  to `--traced-max` opportunities, `traced_peak_mb`: tracemalloc's peak over a second, untimed
  run of the evaluation (tracemalloc makes it some 15 times slower). Flat memory: none of these
  grows with N, and the growth figures stay near zero.

    .venv/bin/python bench/evaluate.py --opportunities 10000 100000 1000000 [--store load]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from bisect import bisect
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate, islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect

from crmsync.config import load_mapping
from crmsync.model import Opportunity
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.model.records import HistoryRow
from crmsync.store import Store, summaries
from crmsync.store.columns import OPP_RAW_COLUMNS
from crmsync.store.schema import history_summaries
from crmsync.store.schema import opportunities as opportunity_table
from crmsync.workflows.load import LoadedWorkflow, load_workflow
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.plan import (
    Firing,
    PlanSummary,
    evaluate,
    evaluate_stream,
    needs_durations,
    summarizer_for,
    with_history,
)

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = (ROOT / "workflows/pipeline-hygiene.yaml", ROOT / "workflows/stage-gates.yaml")
MAPPING = ROOT / "connectors/salesforce.yaml"
CONNECTION = "sf"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BATCH = 2000

# ---- the generator ----------------------------------------------------------------------------
# name, default probability, forecast category (the Salesforce sandbox org's stages)
OPEN = (
    ("Prospecting", 10.0, "Pipeline"),
    ("Qualification", 10.0, "Pipeline"),
    ("Needs Analysis", 20.0, "Pipeline"),
    ("Value Proposition", 50.0, "Pipeline"),
    ("Id. Decision Makers", 60.0, "Pipeline"),
    ("Perception Analysis", 70.0, "Pipeline"),
    ("Proposal/Price Quote", 75.0, "BestCase"),
    ("Negotiation/Review", 90.0, "Commit"),
)
WON, LOST = ("Closed Won", 100.0, "Closed"), ("Closed Lost", 0.0, "Omitted")
# where open deals sit (early stages are crowded), and where lost deals were lost
OPEN_WEIGHTS = (16, 14, 15, 12, 10, 10, 12, 11)
TYPES = ("New Business", "Existing Customer - Upgrade", "Existing Customer - Renewal")
NEXT_STEPS = (
    "Demo with the team",
    "Send pricing",
    "Call the CFO",
    "Security review",
    "Send the proposal",
    "Legal review of the MSA",
    "Intro call",
    "Follow up after the trial",
    "Workshop on site",
    "Reference call",
    "Agree the rollout plan",
    "Book the kickoff",
)
FILLERS = {
    "economic_buyer": ("Sam (CFO)", "Pat (COO)", "Alex (VP Finance)", "Jordan (CEO)"),
    "pain": ("Manual reporting costs 2 FTE", "Churn from slow onboarding", "Month-end close"),
    "timeline": ("Q4", "Before year end", "Next fiscal year", "Within 90 days"),
    "metrics": ("Save 2 FTE", "Onboarding in 2 days", "Close in 4 days"),
    "decision_criteria": ("Security review and price", "ROI within a year", "Fit with the ERP"),
    "decision_process": ("Legal, then CFO sign-off", "Procurement and board", "CEO decides"),
    "champion": ("Dana (VP Ops)", "Lee (Head of CS)", "Robin (Controller)"),
}
ABSURD = (Decimal("0.01"), Decimal("10000000000"), Decimal("-5000"))
DAY = 86_400


def opportunities(
    n: int, seed: int = 7, now: datetime = NOW, canonical: Mapping[str, str] | None = None
) -> Iterator[tuple[Opportunity, list[HistoryRow]]]:
    """`n` Salesforce opportunities with their history, made one at a time (same seed, same
    data). Keys are in order, as the store gives them. Rates (roughly): 65 % open, 20 % won,
    15 % lost; 10 % of deals without any history, the others their 8 latest rows at most (5.3
    a deal on average); 4 % no amount, 1.5 % an absurd one; 6 % of
    open deals past their close date, 8 % without a next step; 4 % owned by an inactive user,
    4 % with a probability off their stage; qualification fields filled more the later the
    stage, scaled by the rep's diligence."""
    stage_of = canonical if canonical is not None else load_mapping(MAPPING).stages
    rng = random.Random(seed)
    r, gauss = rng.random, rng.gauss

    def choice(seq: Sequence[Any]) -> Any:  # random.choice, without its overhead
        return seq[int(r() * len(seq))]

    users = [
        (f"005{u:012d}AAA", f"Rep {u:03d}", f"rep{u:03d}@example.com", u % 10 != 3)
        for u in range(250)
    ]
    active = [u for u in users if u[3]]
    inactive = [u for u in users if not u[3]]
    accounts = [(f"001{a:012d}AAA", f"Account {a:05d}") for a in range(5000)]
    stage_cum = list(accumulate(OPEN_WEIGHTS))
    stage_total = stage_cum[-1]
    qualification = tuple(FILLERS.values())
    today = now.date()
    t_now = int(now.timestamp())

    def at(t: int) -> datetime:  # whole seconds, as Salesforce's stamps
        return datetime.fromtimestamp(t, UTC)

    for i in range(n):
        native_id = f"006{i:012d}AAA"
        key = f"{CONNECTION}:{native_id}"
        outcome = r()
        is_closed = outcome >= 0.65
        is_won = is_closed and outcome < 0.85
        age = int(730 * DAY * r() ** 2) + DAY
        created = t_now - age
        end = (
            t_now - int(r() * min(age, 20 * DAY))
            if not is_closed
            else created + int((age - DAY) * (0.3 + 0.7 * r()))
        )

        # the stage path, as indexes into OPEN, then the closing move
        target = bisect(stage_cum, r() * stage_total)
        if is_won:
            target = max(target, 5)
        # most deals are entered a stage or two before where they are now, some much earlier
        start = max(target - int(rng.expovariate(0.8)), 0)
        path = [start]
        idx, regressions = start, 0
        while idx < target:
            idx += 2 if (r() < 0.08 and idx + 2 <= target) else 1
            path.append(idx)
            if regressions < 2 and idx < target and r() < 0.05:
                idx -= 1
                regressions += 1
                path.append(idx)
        last_open = path[-1]
        final = (WON if is_won else LOST) if is_closed else OPEN[last_open]
        stage_names = [OPEN[p][0] for p in path]
        if is_closed:
            stage_names.append(final[0])
        moves = sorted(created + int((end - created) * r()) for _ in range(len(stage_names) - 1))
        stage_times = [created, *moves]

        # amount, close date and their changes
        u = r()
        if u < 0.04 or (is_won and u < 0.05):
            amount: Decimal | None = None
        elif u < 0.055:
            amount = choice(ABSURD)
        else:
            amount = Decimal(int(math.exp(gauss(10.46, 1.0))))
        amounts: list[Decimal | None] = [amount]
        if amount is not None and r() < 0.3:
            earlier = amount
            for _ in range(1 + int(r() * 2.5)):
                earlier = Decimal(int(earlier * Decimal(0.6 + 0.8 * r())))
                amounts.insert(0, earlier)
        if is_closed:
            close_day = at(end).date()
        elif r() < 0.06:
            close_day = today - timedelta(days=1 + int(r() * 90))
        else:
            close_day = today + timedelta(days=5 + int(r() * 150))
        u = r()
        pushes = 0 if u < 0.55 else 1 if u < 0.80 else 2 if u < 0.92 else 3 + int(r() * 4)
        closes = [close_day]
        for _ in range(pushes):
            closes.insert(0, closes[0] - timedelta(days=10 + int(r() * 60)))

        # next step (open deals mostly have one) and its changes, seen by crmsync's syncs
        u = r()
        if is_closed:
            next_step = None if u < 0.5 else choice(NEXT_STEPS)
        else:
            next_step = None if u < 0.06 else "" if u < 0.08 else choice(NEXT_STEPS)
        step_changes = 0 if next_step is None or r() < 0.5 else 1 + int(r() * 2)

        # history, oldest first: the CRM's own (stage, amount, close date) and crmsync's
        history: list[HistoryRow] = []
        if r() >= 0.10:
            span = max(end - created, 1)
            events: list[tuple[int, str, str | None, str | None, str]] = [
                (created, "stage", None, stage_names[0], "crm"),
                (created, "close_date", None, closes[0].isoformat(), "crm"),
            ]
            if amounts[0] is not None:
                events.append((created, "amount", None, str(amounts[0]), "crm"))
            for j in range(1, len(stage_names)):
                events.append((stage_times[j], "stage", stage_names[j - 1], stage_names[j], "crm"))
            for j in range(1, len(closes)):
                events.append(
                    (
                        created + int(span * r()),
                        "close_date",
                        closes[j - 1].isoformat(),
                        closes[j].isoformat(),
                        "crm",
                    )
                )
            for j in range(1, len(amounts)):
                events.append(
                    (
                        created + int(span * r()),
                        "amount",
                        str(amounts[j - 1]),
                        str(amounts[j]),
                        "crm",
                    )
                )
            if step_changes:
                steps = [choice(NEXT_STEPS) for _ in range(step_changes)]
                steps[-1] = next_step or ""
                previous = None
                for step in steps:
                    events.append(
                        (created + int(span * r()), "next_step", previous, step, "observed")
                    )
                    previous = step
            if len(stage_names) > 1 and r() < 0.25:  # a stage move seen by a sync as well
                t = stage_times[-1] + int(r() * DAY)
                events.append((t, "stage", stage_names[-2], stage_names[-1], "observed"))
                events.append(
                    (
                        t,
                        "stage_canonical",
                        stage_of.get(stage_names[-2]),
                        stage_of.get(stage_names[-1]),
                        "observed",
                    )
                )
            events.sort(key=lambda e: e[0])
            history = [
                HistoryRow(key, f, old, new, at(t), origin)
                for t, f, old, new, origin in events[-8:]
            ]

        # the record
        owner = choice(inactive) if r() < 0.04 else choice(active)
        account = None if r() < 0.01 else choice(accounts)
        probability = final[1]
        if not is_closed and r() < 0.04:
            probability = float(5 * int(r() * 21))
        diligence = choice((0.97, 0.97, 0.85, 0.85, 0.45))
        fill = diligence * (0.25 + 0.1 * last_open)
        buyer, pain, timeline, metrics, criteria, process, champion = (
            choice(pool) if r() < fill else None for pool in qualification
        )
        activity = None if r() < 0.05 else min(end, t_now - int(rng.expovariate(1 / 9) * DAY))
        modified = max(stage_times[-1], end - int(r() * DAY))
        stage = final[0]
        yield (
            Opportunity(
                connection=CONNECTION,
                native_id=native_id,
                source="salesforce",
                name=f"{account[1] if account else 'Unknown'} - {choice(TYPES)}",
                modified_at=at(modified),
                account_id=account[0] if account else None,
                account_name=account[1] if account else None,
                owner_id=owner[0],
                owner_name=owner[1],
                owner_email=owner[2],
                owner_active=owner[3],
                pipeline=None if r() < 0.03 else choice(TYPES),
                stage=stage,
                stage_canonical=stage_of.get(stage),
                is_closed=is_closed,
                is_won=is_won,
                amount=amount,
                currency="USD" if r() < 0.85 else choice(("EUR", "GBP", "CAD")),
                probability=probability,
                forecast_category=final[2],
                close_date=close_day,
                next_step=next_step,
                last_activity_at=None if activity is None else at(activity),
                created_at=at(created),
                stage_entered_at=at(stage_times[-1]),
                budget_confirmed=r() < fill,
                economic_buyer=buyer,
                pain=pain,
                timeline=timeline,
                metrics=metrics,
                decision_criteria=criteria,
                decision_process=process,
                champion=champion,
                custom={
                    "days_since_last_touch": None
                    if activity is None
                    else float((t_now - activity) // DAY),
                    "flags": None,
                },
            ),
            history,
        )


# ---- helpers ----------------------------------------------------------------------------------
def rss_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Watch:
    """Passes a stream through, timing the stream itself (so that the consumer's own time is
    the rest) and sampling this process's RSS and the interpreter's allocated blocks
    (`sys.getallocatedblocks`) at ten checkpoints: their growth from the first checkpoint to the
    last shows whether memory grows with the number of opportunities.

    Items are drawn `CHUNK` at a time (timed) and then handed on (untimed): a clock reading per
    item would itself cost a good part of what is measured, and a chunk of a thousand deals
    keeps memory as flat as the stream."""

    CHUNK = 1000

    def __init__(self, items: Iterator[Any], n: int) -> None:
        self.items, self.every = items, max(n // 10, 1)
        self.seconds = 0.0  # spent producing the items
        self.rss: list[float] = []
        self.blocks: list[int] = []

    def __iter__(self) -> Iterator[Any]:
        every, countdown = self.every, self.every
        items, clock = iter(self.items), time.perf_counter
        spent = 0.0
        while True:
            start = clock()
            chunk = list(islice(items, self.CHUNK))
            spent += clock() - start
            if not chunk:
                break
            for item in chunk:
                yield item
                countdown -= 1
                if not countdown:
                    countdown = every
                    self.rss.append(rss_mb())
                    self.blocks.append(sys.getallocatedblocks())
            del chunk
        self.seconds = spent

    def growth(self) -> str:
        if len(self.rss) < 2:
            return "rss_growth_mb=-  blocks_growth=-"
        return (
            f"rss_growth_mb={self.rss[-1] - self.rss[0]:+.1f}  "
            f"blocks_growth={self.blocks[-1] - self.blocks[0]:+d}"
        )


def traced_peak_mb(run: Callable[[], Any]) -> float:
    """tracemalloc's peak (MB) over one call of `run`, above what was allocated before it."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        run()
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        tracemalloc.stop()


def load() -> tuple[list[LoadedWorkflow], CrmMapping]:
    mapping = load_mapping(MAPPING)
    return [load_workflow(p, connections={CONNECTION: mapping}) for p in WORKFLOWS], mapping


def canonical_of(mapping: CrmMapping) -> Callable[[str | None], str | None]:
    """The native -> canonical stage lookup, as `evaluate` builds it from the mapping."""
    stages = mapping.stages
    return lambda s: stages.get(s) if s is not None else None


# --decide-only: count firings without building their actions (task texts, due dates)
RENDER_ACTIONS = os.environ.get("CRMSYNC_BENCH_DECIDE_ONLY") != "1"


class Counting:
    """on_firing that counts firings (and the actions built for them) and keeps nothing."""

    def __init__(self) -> None:
        self.firings = self.actions = 0

    def __call__(self, firing: Firing) -> None:
        self.firings += 1
        if RENDER_ACTIONS:  # reading them renders the task texts and computes due dates
            self.actions += len(firing.actions)


def figures(summary: PlanSummary, counted: Counting) -> str:
    assert summary.firings == counted.firings, (summary.firings, counted.firings)
    return (
        f"in_scope={summary.in_scope:>8d}  firings={counted.firings:>8d}  "
        f"actions={counted.actions:>8d}  errors={summary.condition_errors}"
    )


# ---- the parts, each run in its own process ---------------------------------------------------
def part_stream(n: int, seed: int, traced: bool) -> None:
    """The engine alone: evaluate_stream over the generator."""
    loaded, mapping = load()
    canon = canonical_of(mapping)
    stages = mapping.stages
    rss_start = rss_mb()

    start = time.perf_counter()
    rows = 0
    for _, history in opportunities(n, seed, canonical=stages):
        rows += len(history)
    gen_seconds = time.perf_counter() - start
    print(
        f"  generator                 opps={n:>8d}  history_rows={rows:>9d} "
        f"({rows / n:.1f} a deal)  seconds={gen_seconds:7.2f}  opps_per_s={n / gen_seconds:8.0f}",
        flush=True,
    )

    def durations_of(wf: LoadedWorkflow, watch: Watch | None = None) -> StageDurations | None:
        """The first pass evaluate() makes when a rule compares with stage durations."""
        if not needs_durations(wf.workflow.rules):
            return None
        durations = StageDurations()
        items = opportunities(n, seed, canonical=stages)
        for opp, history in watch if watch is not None else items:
            durations.add_history(opp, history, canonical_of=canon)
        return durations

    for wf in loaded:
        name = wf.name
        watch = Watch(opportunities(n, seed, canonical=stages), n)
        start = time.perf_counter()
        durations = durations_of(wf, watch)
        if durations is not None:
            seconds = time.perf_counter() - start
            print(
                f"  stream {name:<18s} durations pass  seconds={seconds:7.2f}  "
                f"opps_per_s={n / seconds:8.0f}  "
                f"engine_opps_per_s={n / (seconds - watch.seconds):8.0f}",
                flush=True,
            )
        watch = Watch(opportunities(n, seed, canonical=stages), n)
        summary, counted, seconds = timed_stream(wf, iter(watch), canon, durations)
        assert summary.evaluated == n
        print(
            f"  stream {name:<18s} evaluated={n:>8d}  {figures(summary, counted)}  "
            f"seconds={seconds:7.2f}  opps_per_s={n / seconds:8.0f}  "
            f"engine_opps_per_s={n / (seconds - watch.seconds):8.0f}  "
            f"{watch.growth()}",
            flush=True,
        )

    line = f"  stream memory  rss_start_mb={rss_start:.0f}  rss_peak_mb={peak_rss_mb():.0f}"
    if traced:

        def run() -> None:
            for wf in loaded:
                evaluate_stream(
                    wf,
                    opportunities(n, seed, canonical=stages),
                    CONNECTION,
                    NOW,
                    canonical_of=canon,
                    durations=durations_of(wf),
                    on_firing=Counting(),
                )

        line += f"  traced_peak_mb={traced_peak_mb(run):.1f}"
    print(line, flush=True)
    prebuilt(loaded, canon, stages, min(n, PREBUILT), seed)


PREBUILT = 100_000


def timed_stream(
    wf: LoadedWorkflow,
    items: Iterator[tuple[Opportunity, list[HistoryRow]]],
    canon: Callable[[str | None], str | None],
    durations: StageDurations | None,
) -> tuple[PlanSummary, Counting, float]:
    """`evaluate_stream` over `items`, firings counted: its summary, the counts, the seconds."""
    counted = Counting()
    start = time.perf_counter()
    summary = evaluate_stream(
        wf, items, CONNECTION, NOW, canonical_of=canon, durations=durations, on_firing=counted
    )
    return summary, counted, time.perf_counter() - start


def prebuilt(
    loaded: Sequence[LoadedWorkflow],
    canon: Callable[[str | None], str | None],
    stages: Mapping[str, str],
    n: int,
    seed: int,
) -> None:
    """The engine over deals already in memory (the first `n`, at most PREBUILT: this part
    is not memory-flat and comes after the memory figures): its own speed, with nothing of
    the generator's work or garbage interleaved."""
    deals = list(opportunities(n, seed, canonical=stages))
    for wf in loaded:
        durations = None
        if needs_durations(wf.workflow.rules):
            durations = StageDurations()
            for opp, history in deals:
                durations.add_history(opp, history, canonical_of=canon)
        summary, counted, seconds = timed_stream(wf, iter(deals), canon, durations)
        print(
            f"  prebuilt {wf.name:<16s} evaluated={n:>8d}  {figures(summary, counted)}  "
            f"seconds={seconds:7.2f}  engine_opps_per_s={n / seconds:8.0f}",
            flush=True,
        )


def part_load(n: int, seed: int, url: str) -> None:
    """The generated store: the same data through apply_batch, BATCH opportunities at a time."""
    mapping = load_mapping(MAPPING)
    summarizer = summarizer_for(mapping)  # as the sync keeps them
    store = Store.open(url)
    start = time.perf_counter()
    given = written = 0
    opps: list[Opportunity] = []
    history: list[HistoryRow] = []

    def flush() -> int:
        return store.apply_batch(
            CONNECTION,
            "Opportunity",
            opportunities=opps,
            history=history,
            observed_at=NOW,
            summarizer=summarizer,
        ).history_rows

    for opp, rows in opportunities(n, seed, canonical=mapping.stages):
        opps.append(opp)
        history.extend(rows)
        if len(opps) == BATCH:
            given += len(history)
            written += flush()
            opps, history = [], []
    if opps:
        given += len(history)
        written += flush()
    assert store.stale_summaries(CONNECTION, summarizer.version) == 0
    seconds = time.perf_counter() - start
    store.close()
    folder = Path(url.removeprefix("sqlite:///")).parent
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(
        f"  store load                opps={n:>8d}  history_rows={written:>9d} "
        f"({given} generated, the rest first sightings)  seconds={seconds:7.1f}  "
        f"opps_per_s={n / seconds:8.0f}  db_mb={size / 2**20:.0f}  "
        f"rss_peak_mb={peak_rss_mb():.0f}",
        flush=True,
    )


def part_store(n: int, url: str, traced: bool) -> None:
    """End to end: evaluate() reading the store, as `crmsync plan` does."""
    loaded, mapping = load()
    store = Store.open(url)
    rss_start = rss_mb()
    watch = Watch(with_history(store, CONNECTION), n)
    start = time.perf_counter()
    count = rows = 0
    for _, history in watch:
        count += 1
        rows += len(history)
    read_seconds = time.perf_counter() - start
    assert count == n, count
    print(
        f"  store read (with_history) opps={count:>8d}  history_rows={rows:>9d} "
        f"({rows / n:.1f} a deal)  seconds={read_seconds:7.2f}  "
        f"opps_per_s={n / read_seconds:8.0f}  {watch.growth()}",
        flush=True,
    )
    version = summarizer_for(mapping).version
    start = time.perf_counter()
    count = sum(1 for _ in store.iter_summarized(CONNECTION, version, stays=False))
    seconds = time.perf_counter() - start
    print(
        f"  store read (summarized)   opps={count:>8d}  seconds={seconds:7.2f}  "
        f"opps_per_s={count / seconds:8.0f}  (the records with their history summaries)",
        flush=True,
    )
    print(f"  store read (driver only)  {driver_only(url, version)}", flush=True)
    for wf in loaded:
        for kept in (True, False):
            counted = Counting()
            start = time.perf_counter()
            summary = evaluate(
                wf, store, CONNECTION, NOW, mapping=mapping, on_firing=counted, summaries=kept
            )
            seconds = time.perf_counter() - start
            assert summary.evaluated == n
            passes = 2 if needs_durations(wf.workflow.rules) else 1
            how = "summaries" if kept else "history"
            print(
                f"  store  {wf.name:<18s} evaluated={n:>8d}  {figures(summary, counted)}  "
                f"reads={how:<9s} passes={passes}  seconds={seconds:7.2f}  "
                f"opps_per_s={n / seconds:8.0f}",
                flush=True,
            )
    line = f"  store memory   rss_start_mb={rss_start:.0f}  rss_peak_mb={peak_rss_mb():.0f}"
    if traced:

        def run() -> None:
            for wf in loaded:
                evaluate(wf, store, CONNECTION, NOW, mapping=mapping, on_firing=Counting())

        line += f"  traced_peak_mb={traced_peak_mb(run):.1f}"
    print(line, flush=True)
    store.close()


def driver_only(url: str, version: str) -> str:
    """The same rows as `iter_summarized` fetched by the sqlite3 driver alone, nothing decoded:
    the ceiling of any evaluation that reads this store from Python."""
    on = sa.and_(
        history_summaries.c.key == opportunity_table.c.key, history_summaries.c.version == version
    )
    stmt = (
        sa.select(*OPP_RAW_COLUMNS, *summaries.value_columns(False))
        .select_from(opportunity_table.outerjoin(history_summaries, on))
        .where(opportunity_table.c.connection == CONNECTION, opportunity_table.c.deleted.is_(False))
        .order_by(opportunity_table.c.key)
    )
    sql = str(
        stmt.compile(dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True})
    )
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    start = time.perf_counter()
    cursor, count = db.execute(sql), 0
    while rows := cursor.fetchmany(2000):
        count += len(rows)
    seconds = time.perf_counter() - start
    db.close()
    return f"opps={count:>8d}  seconds={seconds:7.2f}  opps_per_s={count / seconds:8.0f}"


# ---- driver -----------------------------------------------------------------------------------
def child(*args: object) -> None:
    """Run one part in a fresh process, so that its peak memory is its own."""
    subprocess.run([sys.executable, __file__, "--part", *map(str, args)], check=True)


def run(n: int, seed: int, store: str, traced: bool) -> None:
    print(
        f"{n} opportunities (seed {seed}, now {NOW.isoformat()}, "
        f"{', '.join(p.stem for p in WORKFLOWS)})",
        flush=True,
    )
    child("stream", n, seed, int(traced))
    if store == "none":
        return
    with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        child("load", n, seed, url)
        if store == "full":
            child("store", n, url, int(traced))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--opportunities", "-n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--store",
        choices=["full", "load", "none"],
        default="full",
        help="full: load the store and evaluate from it; load: only load it "
        "(the loading time); none: only the streamed engine",
    )
    parser.add_argument(
        "--traced-max",
        type=int,
        default=10_000,
        metavar="N",
        help="also measure tracemalloc's peak for sizes up to N (default "
        "%(default)s; a traced run is some 15 times slower than the timed one)",
    )
    parser.add_argument(
        "--decide-only",
        action="store_true",
        help="measure deciding which rules fire, without rendering the actions they plan",
    )
    parser.add_argument("--part", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decide_only:
        os.environ["CRMSYNC_BENCH_DECIDE_ONLY"] = "1"  # read by the child processes
        print("decide only: actions are not built", flush=True)
    from crmsync.logs import configure

    configure("error")
    if args.part:
        kind, n, *rest = args.part
        if kind == "stream":
            part_stream(int(n), int(rest[0]), bool(int(rest[1])))
        elif kind == "load":
            part_load(int(n), int(rest[0]), rest[1])
        else:
            part_store(int(n), rest[0], bool(int(rest[1])))
        return
    for n in args.opportunities:
        run(n, args.seed, args.store, n <= args.traced_max)


if __name__ == "__main__":
    main()
