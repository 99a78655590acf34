"""Write-back speed and cost: flags and tasks per CRM, against the batch minimum.

Two live workflows fire on every open deal: one flags it, the other flags it too (the same
field) and opens a task, with no per-owner cap. After an untimed sync, `apply` is timed. Each
flagged record must get ONE write carrying both workflows' flags, so the write-back minimum is
ceil(records/200) Salesforce, ceil(records/100) HubSpot flag calls plus the task batches
(ceil(tasks/200), ceil(tasks/100)); the whole apply adds one changed-since query and, on
Salesforce, the login. Prints, per CRM: actions, write-back calls against that minimum, all
calls against theirs, actions per second, and the peak memory of the applying process. The
sandbox runs in its own process, as a CRM would.

    .venv/bin/python bench/writeback.py --actions 1000 10000 [--store-url URL]
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox_process import sandbox_process

from crmsync.app.apply import apply
from crmsync.app.factory import build_connector
from crmsync.app.sync import sync
from crmsync.config import Config
from crmsync.store import Store
from crmsync.store.outbox import audit_trail

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


def run(actions: int, store_url: str | None) -> None:
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
            start = time.perf_counter()
            report = apply(cfg, store, connections=[conn.name])
            seconds = time.perf_counter() - start
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
                f"confirmed={done:>6d} superseded={s.superseded:>6d}  "
                f"seconds={seconds:6.1f}  actions_per_second={done / seconds:7.0f}"
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
    args = parser.parse_args()
    from crmsync.logs import configure

    configure("error")
    for n in args.actions:
        run(n, args.store_url)


if __name__ == "__main__":
    main()
