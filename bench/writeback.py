"""Write-back speed and cost: flags and tasks per CRM, against the batch minimum.

Two live workflows fire on every open deal: one flags it, the other flags it too (the same
field) and opens a task, with no per-owner cap. After an untimed sync, `apply` is timed. Each
flagged record must get ONE write carrying both workflows' flags, so the write-back minimum is
ceil(records/200) Salesforce, ceil(records/100) HubSpot flag calls plus the task batches
(ceil(tasks/200), ceil(tasks/100)); the whole apply adds one changed-since query and, on
Salesforce, the login. Prints, per CRM: actions, write-back calls against that minimum, all
calls against theirs, and where apply's time went: in the CRM calls (HTTP, TLS, the connector's
request building and the sandbox's own work, timed around each connector call), in rule
evaluation (crmsync.workflows.plan.evaluate, the lead's part, and the task texts and due dates
apply builds when it reads a firing's actions), and the rest, crmsync's write-back
bookkeeping (drafting intents, the budget, recording the plan, the outbox moves, audit, flag
state, the executor's own reads), whose actions per second are the issue's goal (>= 10,000).
Also the peak memory of the applying process. The sandbox runs in its own process, as a CRM
would. Figures are wall-clock on a shared machine: rough; call counts are exact.

    .venv/bin/python bench/writeback.py --actions 1000 10000 [--store-url URL] [--profile DIR]

`--profile DIR` runs each timed apply under cProfile and writes DIR/<connection>-<actions>.prof
(figures under the profiler are slower; compare runs without it).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import math
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox_process import sandbox_process

import crmsync.app.apply as apply_module
from crmsync.app.apply import apply
from crmsync.app.factory import build_connector
from crmsync.app.plan import workflows_for
from crmsync.app.sync import sync
from crmsync.config import Config
from crmsync.store import Store
from crmsync.store.outbox import audit_trail
from crmsync.workflows.firing import Firing

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = """\
name: all-open
mode: live
rules:
  - id: open
    kind: custom
    condition: "!is_closed"
    actions:
      flag: {field: flags, value: open}
      task: {subject: "{{ name }}: review", body: "{{ reasons|join('; ') }}"}
"""
HYGIENE = """\
name: hygiene
mode: live
rules:
  - id: stale
    kind: custom
    condition: "!is_closed"
    actions:
      flag: {field: flags, value: stale}
"""
OPEN_SHARE = 0.7  # about this share of the sandbox's deals is open
CRM_CALLS = ("write", "find_tasks", "read_tasks", "changed_since")


class TimedWriter:
    """A connector whose CRM calls are timed (HTTP wait, TLS, request building, the sandbox)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.cpu = 0.0  # of those seconds, this process's CPU (request building, JSON, TLS)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in CRM_CALLS:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.cpu += time.process_time() - cpu

        return timed


def timed_writer(writers: list[TimedWriter], connection: Any) -> TimedWriter:
    """The connection's connector, timed, kept in `writers` to read its time afterwards."""
    writers.append(TimedWriter(build_connector(connection)))
    return writers[-1]


@contextmanager
def timed_evaluation() -> Iterator[list[float]]:
    """Time spent in rule evaluation during the block: apply's `evaluate`, and the firings'
    actions (task texts, due dates) that apply has built only when it reads them, since
    evaluation leaves them to it (both patched); wall seconds and this process's CPU seconds.
    Building them is the rules' work, not the write-back's bookkeeping."""
    spent = [0.0, 0.0]
    inside = [False]
    original: Callable[..., Any] = apply_module.evaluate
    read = Firing.actions

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        inside[0] = True
        try:
            return original(*args, **kwargs)
        finally:
            inside[0] = False
            spent[0] += time.perf_counter() - start
            spent[1] += time.process_time() - cpu

    def actions(firing: Firing) -> Any:
        if inside[0]:
            return read.fget(firing)  # type: ignore[attr-defined]
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return read.fget(firing)  # type: ignore[attr-defined]
        finally:
            spent[0] += time.perf_counter() - start
            spent[1] += time.process_time() - cpu

    apply_module.evaluate = evaluate
    Firing.actions = property(actions)  # type: ignore[method-assign,assignment]
    try:
        yield spent
    finally:
        apply_module.evaluate = original
        Firing.actions = read


def config(info: dict[str, Any], store_url: str, folder: Path) -> Config:
    sf, hs, ca = info["salesforce"], info["hubspot"], info["ca_path"]
    return Config.model_validate(
        {
            "store": {"url": store_url},
            "workflows": str(folder),
            "writeback": {"max_tasks_per_owner_per_day": 100_000},
            "connections": [
                {
                    "name": "sf",
                    "type": "salesforce",
                    "mapping": str(ROOT / "connectors/salesforce.yaml"),
                    "auth": {
                        "method": "client_credentials",
                        "login_url": sf["login_url"],
                        "client_id": sf["client_id"],
                        "client_secret": sf["client_secret"],
                        "ca_file": ca,
                    },
                },
                {
                    "name": "hs",
                    "type": "hubspot",
                    "mapping": str(ROOT / "connectors/hubspot.yaml"),
                    "auth": {
                        "method": "private_app",
                        "access_token": hs["access_token"],
                        "base_url": hs["base_url"],
                        "ca_file": ca,
                    },
                },
            ],
        }
    )


def run(actions: int, store_url: str | None, profile: Path | None = None) -> None:
    n = max(10, round(actions / 2 / OPEN_SHARE))  # a task and a flag per open deal
    with sandbox_process(n) as (info, _pid), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "workflows"
        folder.mkdir()
        (folder / "all-open.yaml").write_text(WORKFLOW)
        (folder / "hygiene.yaml").write_text(HYGIENE)
        store = Store.open(store_url or f"sqlite:///{tmp}/bench.db")
        cfg = config(info, store.url, folder)
        for conn in cfg.connections:
            connector = build_connector(conn)
            sync(store, connector)
            connector.close()
        print(f"~{actions} actions per CRM ({n} opportunities), store {store.url.split(':')[0]}")
        for conn in cfg.connections:
            loaded, _ = workflows_for(cfg, (), ())  # config and CEL compilation: not timed
            writers: list[TimedWriter] = []
            profiler = cProfile.Profile() if profile else None
            with timed_evaluation() as evaluating:
                start, cpu = time.perf_counter(), time.process_time()
                if profiler:
                    profiler.enable()
                report = apply(cfg, store, connections=[conn.name], loaded=loaded,
                               writer_for=functools.partial(timed_writer, writers))  # fmt: skip
                if profiler:
                    profiler.disable()
                seconds = time.perf_counter() - start
                cpu = time.process_time() - cpu
            if profiler and profile:
                profile.mkdir(parents=True, exist_ok=True)
                profiler.dump_stats(profile / f"{conn.name}-{actions}.prof")
            crm = sum(w.seconds for w in writers)
            booking = seconds - crm - evaluating[0]
            booking_cpu = cpu - sum(w.cpu for w in writers) - evaluating[1]
            (s,) = report.sends
            size = 200 if conn.type == "salesforce" else 100
            tasks = sum(w.planned["task.create"] for w in report.workflows)
            records = flagged_records(store, conn.name)
            writes = math.ceil(tasks / size) + math.ceil(records / size)
            login = 1 if conn.type == "salesforce" else 0
            minimum = writes + 1 + login  # the changed-since query, the Salesforce login
            write_calls = s.api_calls - 1 - login
            done = s.created + s.flagged
            print(
                f"  {conn.name}  records_flagged={records:>6d} tasks={tasks:>6d}  "
                f"writeback_calls={write_calls:>4d} (minimum {writes})  "
                f"api_calls={s.api_calls:>4d} (minimum {minimum})  "
                f"confirmed={done:>6d} superseded={s.superseded:>6d}"
            )
            print(
                f"      seconds={seconds:6.2f} = crm_calls {crm:5.2f} + evaluation "
                f"{evaluating[0]:5.2f} + bookkeeping {booking:5.2f}  "
                f"actions_per_second={done / seconds:7.0f}  "
                f"bookkeeping_actions_per_second={done / booking:7.0f}"
            )
            print(
                f"      cpu_seconds={cpu:6.2f} (this process; bookkeeping {booking_cpu:5.2f})  "
                f"bookkeeping_actions_per_cpu_second={done / booking_cpu:7.0f}"
            )
        store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak_memory_mb={peak:.0f} (applying process, cumulative)")


def flagged_records(store: Store, connection: str) -> int:
    """Distinct records with a flag write in the outbox (what the flag calls must cover)."""
    return len({r["native_id"] for r in audit_trail(store, limit=10**9)
                if r["connection"] == connection and r["kind"] == "flag.write"})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actions", "-n", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--store-url", help="default: a temporary SQLite file")
    parser.add_argument("--profile", type=Path, help="write a cProfile of each apply here")
    args = parser.parse_args()
    from crmsync.logs import configure

    configure("error")
    for n in args.actions:
        run(n, args.store_url, args.profile)


if __name__ == "__main__":
    main()
