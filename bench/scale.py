"""Scale-out throughput: syncs per minute for 1, 2 and 4 `crmsync run` workers sharing one
PostgreSQL queue over 20 connections (10 Salesforce orgs and 10 HubSpot portals of one sandbox,
run in its own process as CRMs would be), then the simulated day of bench/scale_sim.py.

Every connection syncs every `--interval` seconds, so the workers always have work: the figure is
the most syncs a minute those workers finish (incremental, a few changed deals each, as the
sandbox's generated activity gives), counted from the store's runs in a window after every
connection's first full sync. Each worker count gets a fresh PostgreSQL schema. Workflows are off
here (syncs only); the simulation covers the mix.

    .venv/bin/python bench/scale.py                       # 1, 2, 4 workers, 60 s each
    .venv/bin/python bench/scale.py --workers 1 2 --seconds 30 --no-simulation
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
import yaml
from sandbox_process import sandbox_process

from crmsync.store import Store

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("CRMSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A store URL on a new PostgreSQL schema, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.make_url(PG).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    try:
        yield (
            sa.make_url(PG)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(f"DROP SCHEMA {schema} CASCADE")


def write_config(folder: Path, info: dict[str, Any], url: str, interval: float, jobs: int) -> Path:
    """One connection per org and portal; no workflows (an empty folder)."""
    (folder / "workflows").mkdir(parents=True, exist_ok=True)
    ca = info["ca_path"]
    connections: list[dict[str, Any]] = []
    for i, org in enumerate(info["salesforce_orgs"]):
        connections.append({
            "name": f"sf{i}", "type": "salesforce",
            "mapping": str(ROOT / "connectors" / "salesforce.yaml"),
            "auth": {"method": "password", "login_url": org["login_url"],
                     "client_id": org["client_id"], "client_secret": org["client_secret"],
                     "username": org["username"], "password": org["password"], "ca_file": ca},
            "sync": {"schedule": "*/5 * * * *"},
        })  # fmt: skip
    for i, portal in enumerate(info["hubspot_portals"]):
        connections.append({
            "name": f"hs{i}", "type": "hubspot",
            "mapping": str(ROOT / "connectors" / "hubspot.yaml"),
            "auth": {"method": "private_app", "access_token": portal["access_token"],
                     "base_url": portal["base_url"], "ca_file": ca},
            "sync": {"schedule": "*/5 * * * *"},
        })  # fmt: skip
    config = {
        "store": {"url": url},
        "workflows": str(folder / "workflows"),
        "service": {
            "http": {"enabled": False},
            "tick_seconds": 1,
            "sync_interval_seconds": interval,
            "max_parallel_jobs": jobs,
        },
        "connections": connections,
    }
    path = folder / "crmsync.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def runs(url: str) -> list[tuple[str, datetime, float, str, int, str]]:
    """Every sync run: connection, start, seconds, status, API calls, error."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT connection, started_at, duration_seconds, status, api_calls, error "
                "FROM sync_runs WHERE finished_at IS NOT NULL"
            )).all()  # fmt: skip
    finally:
        engine.dispose()
    return [(r[0], r[1], float(r[2] or 0), r[3], int(r[4] or 0), r[5] or "") for r in rows]


def measure(info: dict[str, Any], workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """Start `workers` processes on a fresh schema; syncs finished per minute in the window."""
    names = [f"sf{i}" for i in range(len(info["salesforce_orgs"]))]
    names += [f"hs{i}" for i in range(len(info["hubspot_portals"]))]
    with fresh_schema() as url, tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), info, url, args.interval, args.jobs)
        Store.open(url).close()  # the tables and the queue, before the workers race for them
        procs = []
        for i in range(workers):
            with (Path(tmp) / f"w{i}.log").open("wb") as log:
                command = [sys.executable, "-m", "crmsync", "--log-level", "warning",
                           "--log-format", "json", "run", "-c", str(config)]  # fmt: skip
                procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log))
        try:
            deadline = time.monotonic() + 300
            while {r[0] for r in runs(url) if r[3] == "ok"} != set(names):  # first full syncs
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise SystemExit("the workers did not sync every connection once")
                time.sleep(1)
            start = datetime.now(UTC)
            time.sleep(args.seconds)
            end = datetime.now(UTC)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(timeout=120)
        window = [r for r in runs(url) if start <= r[1] < end and r[3] == "ok"]
        failed = [r for r in runs(url) if start <= r[1] < end and r[3] != "ok"]
    minutes = (end - start) / timedelta(minutes=1)
    durations = sorted(r[2] for r in window)
    return {
        "syncs_per_minute": len(window) / minutes,
        "per_connection_per_minute": len(window) / minutes / len(names),
        "median_sync_seconds": statistics.median(durations) if durations else float("nan"),
        "api_calls_per_sync": sum(r[4] for r in window) / max(1, len(window)),
        "not_ok": len(failed),
        "errors": sorted({f"{r[3]}: {r[5][:160]}" for r in failed}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", "-w", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--orgs", type=int, default=10, help="Salesforce orgs (and as many portals)"
    )
    parser.add_argument("--opportunities", "-n", type=int, default=200, help="per org and portal")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    parser.add_argument("--interval", type=float, default=0.1, help="sync_interval_seconds")
    parser.add_argument("--jobs", type=int, default=2, help="max_parallel_jobs per worker")
    parser.add_argument("--no-simulation", action="store_true")
    args = parser.parse_args()
    print(
        f"# {args.orgs} Salesforce orgs + {args.orgs} HubSpot portals, {args.opportunities} deals "
        f"each; every connection due every {args.interval} s; {args.jobs} jobs per worker; "
        f"{os.cpu_count()} CPUs (sandbox and PostgreSQL on the same machine)\n"
        f"# the schedule's ceiling: one sync per connection per 1 s tick = {2 * args.orgs * 60} "
        "a minute"
    )
    extra = ["--salesforce-orgs", str(args.orgs), "--hubspot-portals", str(args.orgs)]
    with sandbox_process(args.opportunities, extra) as (info, _pid):
        print(f"{'workers':>7} {'syncs/min':>10} {'/conn/min':>10} {'median s':>9} "
              f"{'calls/sync':>10} {'not ok':>6}")  # fmt: skip
        for n in args.workers:
            m = measure(info, n, args)
            print(
                f"{n:>7} {m['syncs_per_minute']:>10.0f} {m['per_connection_per_minute']:>10.1f} "
                f"{m['median_sync_seconds']:>9.2f} {m['api_calls_per_sync']:>10.1f} "
                f"{m['not_ok']:>6}",
                flush=True,
            )
            for error in m["errors"]:
                print(f"        not ok: {error}")
    if not args.no_simulation:
        print("\n# the simulated day (bench/scale_sim.py, default figures)", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "scale_sim.py")], check=True)


if __name__ == "__main__":
    main()
