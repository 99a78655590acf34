"""Write-back speed and cost: M flag writes and M tasks per CRM, against the batch minimum.

A live rule fires on every open deal (a flag and a task each), with no per-owner cap. After an
untimed sync, `apply` is timed. Prints, per CRM: actions, API calls against the minimum
(ceil(M/200) Salesforce, ceil(M/100) HubSpot, per kind, plus one changed-since query and the
Salesforce login), actions per second, and the peak memory of the applying process. The sandbox
runs in its own process, as a CRM would.

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
            (w,) = report.workflows
            (s,) = report.sends
            size = 200 if conn.type == "salesforce" else 100
            tasks, flags = w.planned["task.create"], w.planned["flag.write"]
            minimum = math.ceil(tasks / size) + math.ceil(flags / size) + 1
            minimum += 1 if conn.type == "salesforce" else 0  # the OAuth login
            done = s.created + s.flagged
            print(
                f"  {conn.name}  actions={tasks + flags:>6d} (tasks={tasks} flags={flags})  "
                f"api_calls={s.api_calls:>4d} (minimum {minimum})  confirmed={done:>6d}  "
                f"seconds={seconds:6.1f}  actions_per_second={done / seconds:7.0f}"
            )
        store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak_memory_mb={peak:.0f} (applying process, cumulative)")


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
