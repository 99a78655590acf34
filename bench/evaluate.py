"""Workflow evaluation speed and memory: both shipped workflows over N generated opportunities.

Data: the sandbox's generator (`crmsync.sandbox.generator.salesforce_deals`, the Salesforce org
`crmsync sandbox` serves), streamed, each deal turned into what a sync stores (native stage names
mapped to canonical ones by connectors/salesforce.yaml; OpportunityHistory rows as field history:
stage moves, close-date pushes, amount changes; missing fields, inactive owners, past close
dates, odd amounts). Nothing is kept between deals, so the generator itself is memory-flat.

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
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect

from crmsync.config import load_mapping
from crmsync.model import Opportunity
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.model.records import HistoryRow
from crmsync.sandbox.clock import parse_datetime
from crmsync.sandbox.generator import salesforce_deals
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
# The sandbox's own generator makes the deals (the Salesforce org `crmsync sandbox` serves); they
# are turned into what a sync stores, as the Salesforce connector does: the record as normalize
# makes it through connectors/salesforce.yaml, the OpportunityHistory rows into field history as
# connectors/salesforce_history.py does (HISTORY_MAP: OpportunityHistory column -> tracked field
# and the column holding its previous value).
HISTORY_MAP = {
    "StageName": ("stage", None),
    "Amount": ("amount", "PrevAmount"),
    "CloseDate": ("close_date", "PrevCloseDate"),
}


def opportunities(
    n: int, seed: int = 7, now: datetime = NOW, canonical: Mapping[str, str] | None = None
) -> Iterator[tuple[Opportunity, list[HistoryRow]]]:
    """`n` Salesforce opportunities with their history, made one at a time by the sandbox's
    generator (`crmsync.sandbox.generator`: same seed and now, same data as the sandbox org) and
    kept by nobody. Keys are in order, as the store gives them. The data's shape and its dirt
    (missing amounts, past close dates, inactive owners, probabilities off their stage, blank
    next steps, ...) are the generator's, described in its docstring; history is what
    Salesforce's OpportunityHistory gives (stage, amount and close-date changes from creation
    on); nothing crmsync itself would have observed."""
    stage_of = canonical if canonical is not None else load_mapping(MAPPING).stages
    for deal in salesforce_deals(n, seed, now):
        rec, owner = deal.opportunity, deal.owner
        native_id = rec["Id"]
        stage = rec["StageName"]
        amount = rec["Amount"]
        activity = rec["LastActivityDate"]
        touch = rec["Days_Since_Last_Touch__c"]
        yield (
            Opportunity(
                connection=CONNECTION,
                native_id=native_id,
                source="salesforce",
                name=rec["Name"],
                modified_at=parse_datetime(rec["SystemModstamp"]),
                account_id=rec["AccountId"],
                account_name=deal.account_name,
                owner_id=rec["OwnerId"],
                owner_name=owner["Name"],
                owner_email=owner["Email"],
                owner_active=owner["IsActive"],
                pipeline=rec["Type"],
                stage=stage,
                stage_canonical=stage_of.get(stage),
                is_closed=rec["IsClosed"],
                is_won=rec["IsWon"],
                amount=None if amount is None else Decimal(str(amount)),
                currency=rec["CurrencyIsoCode"],
                probability=rec["Probability"],
                forecast_category=rec["ForecastCategoryName"],
                close_date=date.fromisoformat(rec["CloseDate"]),
                next_step=rec["NextStep"] or None,  # blank counts as missing, as in normalize
                last_activity_at=None if activity is None else parse_datetime(activity),
                created_at=parse_datetime(rec["CreatedDate"]),
                stage_entered_at=parse_datetime(rec["LastStageChangeDate"]),
                budget_confirmed=rec["Budget_Confirmed__c"],
                economic_buyer=rec["Economic_Buyer__c"],
                pain=rec["Identified_Pain__c"],
                timeline=rec["Decision_Timeline__c"],
                metrics=rec["Metrics__c"],
                decision_criteria=rec["Decision_Criteria__c"],
                decision_process=rec["Decision_Process__c"],
                champion=rec["Champion__c"],
                custom={"days_since_last_touch": touch, "flags": rec["CRMSync_Flags__c"]},
            ),
            field_history(f"{CONNECTION}:{native_id}", deal.history),
        )


def field_history(key: str, rows: list[dict[str, Any]]) -> list[HistoryRow]:
    """One opportunity's OpportunityHistory rows (oldest first) as the connector's history pull
    turns them into field history."""
    out: list[HistoryRow] = []
    previous: dict[str, str | None] = {}
    for row in rows:
        when = parse_datetime(row["CreatedDate"])
        for column, (field, prev_column) in HISTORY_MAP.items():
            value = history_text(field, row[column])
            if prev_column is not None:  # Salesforce says what the value was before
                old = history_text(field, row[prev_column])
                first = row[prev_column] is None and field not in previous
                if old == value and not first:
                    continue
            else:  # stages: compare with the row before
                old = previous.get(field)
                if field in previous and old == value:
                    continue
            previous[field] = value
            out.append(HistoryRow(key, field, old, value, when, "crm"))
    return out


def history_text(field: str, value: Any) -> str | None:
    if value is None:
        return None
    return str(Decimal(str(value))) if field == "amount" else str(value)


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
    if url.startswith("postgresql"):
        # The planner's statistics, as autovacuum gathers them within a minute of a bulk load in
        # a deployment (a test cluster may run without autovacuum): without them PostgreSQL
        # joins a plan's deals with their summaries by nested loop and sorts on disk (2x slower).
        with sa.create_engine(url).connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    folder = Path(url.removeprefix("sqlite:///")).parent
    size = sum(p.stat().st_size for p in folder.iterdir()) if url.startswith("sqlite") else 0
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
