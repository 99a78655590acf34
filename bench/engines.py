"""The columnar engine against the per-deal engine, side by side, reading the same store.

Data: bench/evaluate.py's generated store (the sandbox's Salesforce generator, as a sync stores
it, history summaries kept), on SQLite and, with --pg-url, on PostgreSQL too.

Prints, per size, backend and shipped workflow, each figure measured in a fresh process:

* `columnar` and `per-deal`: `evaluate()` as `crmsync plan` runs it, decisions and reasons
  (no task texts: `on_firing` unset); deals per second, firings, and the process's peak memory;
* `... +actions`: the same with every firing handed on and its actions built (task texts,
  due dates), as `apply` does;
* `decide only`: the vectorised tests alone over frames already in memory (deals per second);
* the ratio columnar / per-deal, per workflow;
* `again_deals_per_s`: the same evaluation run a second time in that process, as a running
  service evaluates (the database driver loaded, its first connection and polars' thread pool
  behind it, SQLite's helper process started); the first figure is what a `crmsync plan`
  command sees;
* `helper_rss_peak_mb`: the peak memory of the processes that read a big SQLite store for the
  columnar engine (store/sqlite_arrow.py), added up, apart from the evaluating process's own.

    .venv/bin/python bench/engines.py --opportunities 100000 1000000 [--pg-url URL]
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from evaluate import (
    CONNECTION,
    NOW,
    Counting,
    load,
    part_load,
    peak_rss_mb,
)

from crmsync.store import Store, sqlite_arrow
from crmsync.workflows.columnar.engine import frames
from crmsync.workflows.columnar.run import plan_layout
from crmsync.workflows.plan import evaluate, needs_durations, summarizer_for
from crmsync.workflows.readers import stage_durations_from_summaries


def part_measure(url: str, name: str, engine: str, actions: bool) -> None:
    """One evaluation of one workflow, in this fresh process: its speed and peak memory."""
    loaded, mapping = load()
    wf = next(w for w in loaded if w.name == name)
    store = Store.open(url)
    counted = Counting() if actions else None
    loaded_at = time.perf_counter()
    if engine != "per-deal":  # the columnar engine's libraries, once a process (timed apart)
        import crmsync.workflows.columnar.durations
        import crmsync.workflows.columnar.run  # noqa: F401
    imports = time.perf_counter() - loaded_at
    start = time.perf_counter()
    summary = evaluate(
        wf, store, CONNECTION, NOW, mapping=mapping, on_firing=counted, engine=engine
    )
    seconds = time.perf_counter() - start
    # again in the same process, as a running service evaluates: drivers loaded, pools warm
    start = time.perf_counter()
    evaluate(wf, store, CONNECTION, NOW, mapping=mapping, on_firing=counted, engine=engine)
    again = time.perf_counter() - start
    n = summary.evaluated
    built = f"  actions={counted.actions // 2:>8d}" if counted is not None else ""
    label = engine + (" +actions" if actions else "")
    helper = sum(_peak_mb(h.proc.pid) for h in sqlite_arrow._idle)  # every helper kept
    sqlite_arrow._close_all()
    print(
        f"    {label:<18s} {name:<17s} deals={n:>8d}  firings={summary.firings:>8d}{built}  "
        f"seconds={seconds:7.2f}  deals_per_s={n / seconds:9.0f}  "
        f"again_deals_per_s={n / again:9.0f}  rss_peak_mb={peak_rss_mb():5.0f}"
        + (f"  helper_rss_peak_mb={helper:4.0f}" if helper else "")
        + (f"  (its libraries loaded beforehand: {imports:.2f} s)" if imports >= 0.01 else ""),
        flush=True,
    )
    store.close()


def _peak_mb(pid: int) -> float:
    """A live process's peak resident memory (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def part_decide(url: str, name: str) -> None:
    """The vectorised tests alone, over frames read beforehand (the reading timed apart)."""
    loaded, mapping = load()
    wf = next(w for w in loaded if w.name == name)
    store = Store.open(url)
    summarizer = summarizer_for(mapping)
    durations = None
    if needs_durations(wf.workflow.rules):
        durations = stage_durations_from_summaries(store, CONNECTION, summarizer)
    lay = plan_layout(wf, durations)
    start = time.perf_counter()
    today = NOW.date()
    read = list(frames(store, CONNECTION, summarizer.version, lay, NOW, today))
    read_seconds = time.perf_counter() - start
    n = sum(f.height for f in read)
    vectors = [p.vec for p in lay.rules if p.vec is not None]
    start = time.perf_counter()
    fired = 0
    for frame in read:
        for vec in vectors:
            work = frame.with_columns([e.alias(c) for c, e in vec.extra]) if vec.extra else frame
            fired += int(work.select(vec.candidate.sum()).item())
    seconds = time.perf_counter() - start
    print(
        f"    {'decide only':<18s} {name:<17s} deals={n:>8d}  candidates={fired:>8d}  "
        f"seconds={seconds:7.3f}  deals_per_s={n / seconds:9.0f}  "
        f"(reading and preparing the frames: {read_seconds:.2f} s, {n / read_seconds:.0f}/s)",
        flush=True,
    )
    store.close()


def part_grow(url: str, factor: int) -> None:
    """The store `factor` times over: every deal and its summary copied under new keys (the
    same data again, so each copy costs the engines what the original costs)."""
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    start = time.perf_counter()
    for table in ("opportunities", "history_summaries"):
        cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        for i in range(1, factor):
            picked = ", ".join(f"{c} || '~{i}'" if c in ("key", "native_id") else c for c in cols)
            db.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) "
                f"SELECT {picked} FROM {table} WHERE key NOT LIKE '%~%'"
            )
    db.commit()
    n = db.execute("SELECT count(*) FROM opportunities").fetchone()[0]
    print(f"  store grown x{factor}: opps={n}  seconds={time.perf_counter() - start:.1f}")


def child(*args: object) -> None:
    subprocess.run([sys.executable, __file__, "--part", *map(str, args)], check=True)


def compare(url: str, names: list[str], backend: str) -> None:
    print(f"  {backend}", flush=True)
    for name in names:
        child("decide", url, name)
        for engine in ("columnar", "per-deal"):
            child("measure", url, name, "auto" if engine == "columnar" else engine, 0)
        for engine in ("columnar", "per-deal"):
            child("measure", url, name, "auto" if engine == "columnar" else engine, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--opportunities", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url", help="also measure on this (empty) PostgreSQL database")
    parser.add_argument(
        "--grow",
        type=int,
        default=1,
        help="generate N / GROW deals and copy them GROW times (a 1M store in minutes)",
    )
    parser.add_argument("--keep", help="keep the stores in this folder (and reuse them)")
    parser.add_argument("--part", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from crmsync.logs import configure

    configure("error")  # the figures alone (a plan logs which rules run where at debug)
    if args.part:
        kind, *rest = args.part
        if kind == "measure":
            part_measure(rest[0], rest[1], rest[2], rest[3] == "1")
        elif kind == "decide":
            part_decide(rest[0], rest[1])
        elif kind == "load":
            part_load(int(rest[0]), int(rest[1]), rest[2])
        elif kind == "grow":
            part_grow(rest[0], int(rest[1]))
        return
    names = [w.name for w in load()[0]]
    print(f"polars {pl.__version__}; 'auto' below is the columnar engine", flush=True)
    for n in args.opportunities:
        print(f"{n} opportunities (seed {args.seed})", flush=True)
        with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
            folder = Path(args.keep or tmp) / f"{n}-{args.seed}-{args.grow}"
            folder.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{folder}/bench.db"
            if not (folder / "bench.db").exists():
                child("load", n // args.grow, args.seed, url)
                if args.grow > 1:
                    child("grow", url, args.grow)
            compare(url, names, "sqlite")
        if args.pg_url:
            with Store.open(args.pg_url) as pg:
                loaded_already = pg.count(CONNECTION) == n
            if not loaded_already:  # an empty schema: load it (a schema holding n deals is kept)
                child("load", n, args.seed, args.pg_url)
            compare(args.pg_url, names, "postgresql")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
