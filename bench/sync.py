"""Sync speed and cost against the bare clients: full pulls of N opportunities per CRM.

For each CRM and size, in the same run against the same sandbox (in its own process, as a CRM
would be): the bare client paging the calls a full pull makes (simple-salesforce `query_all_iter`
over Opportunity and OpportunityHistory; hubspot-api-client `basic_api.get_page`, 100 a page, with
the reference reads), then crmsync's full sync into a fresh store, then an incremental sync right
away (its look-back window, the connector's 300 s overlap, reads again the deals modified in the
minutes before the full pull), then, with the sandbox's clock 10 minutes on, one sync that takes
the windows past those deals and, 10 minutes later still, one that finds nothing changed (the
case the tests assert at 2 calls). Each runs in its own child process, so its
time, CPU and peak memory are its own (the bare client's records are the opportunities and, for
Salesforce, the history rows it read).
API calls are counted by the sandbox (exact); times are rough on a shared machine.

Then the pipeline snapshots (issue 18), in a fresh store: the full sync with the first snapshot
(today's rows), the first report's filling of its 13 weeks from history (which the report does,
not the sync), then incremental syncs with
nothing changed, with and without the day's snapshot, alternated in pairs on the same store
(medians), and the snapshot table's size per 100k deal-days (SQLite: dbstat; PostgreSQL:
pg_total_relation_size).

    .venv/bin/python bench/sync.py --opportunities 10000 100000 [--store-url URL] [--crm sf hs]
    .venv/bin/python bench/sync.py -n 10000 --store-url postgresql://postgres@127.0.0.1/test
    git archive <rev> src | tar -x -C /tmp/base   # then, paired with that revision in one run:
    .venv/bin/python bench/sync.py -n 10000 100000 --baseline /tmp/base/src
    .venv/bin/python bench/sync.py -n 100000 --crm sf --profile /tmp/sf.prof   # cProfile the sync
    .venv/bin/python bench/sync.py -n 10000 --no-snapshots   # the sync figures only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hubspot
import requests
from sandbox_process import sandbox_process
from simple_salesforce import Salesforce

ROOT = Path(__file__).resolve().parents[1]
CRMS = ("sf", "hs")
PAGE = {"sf": 2000, "hs": 100}


def _http(ca_path: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = ca_path
    return session


def _calls(info: dict[str, Any], crm: str, *, reset: bool = False) -> int:
    admin = _http(info["ca_path"])
    url = info["salesforce" if crm == "sf" else "hubspot"]["admin_url"] + "/calls"
    if reset:
        admin.delete(url).raise_for_status()
        return 0
    return int(admin.get(url).json()["total"])


# ---- the bare clients: the calls a full pull makes, nothing stored -------------------------


def bare_salesforce(info: dict[str, Any]) -> int:
    """Log in, describe, then page Opportunity (deleted too) and OpportunityHistory, 2,000 a page,
    with the fields crmsync selects: records read."""
    from crmsync.config import load_mapping
    from crmsync.connectors.salesforce_history import HISTORY_FIELDS
    from crmsync.connectors.salesforce_read import soql_fields

    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")
    sf_info = info["salesforce"]
    session = _http(info["ca_path"])
    token = session.post(
        sf_info["login_url"] + "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sf_info["client_id"],
            "client_secret": sf_info["client_secret"],
        },
    ).json()
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=session,
        version="59.0",
    )
    headers = {"Sforce-Query-Options": "batchSize=2000"}
    sf.Opportunity.describe()
    fields = ", ".join(soql_fields(mapping))
    count = 0
    soql = f"SELECT {fields} FROM Opportunity ORDER BY SystemModstamp, Id"
    for _ in sf.query_all_iter(soql, include_deleted=True, headers=headers):
        count += 1
    soql = (  # in the connector's order (by opportunity since issue 17; by CreatedDate before)
        f"SELECT {', '.join(HISTORY_FIELDS)} FROM OpportunityHistory "
        "ORDER BY OpportunityId, CreatedDate, Id"
    )
    for _ in sf.query_all_iter(soql, headers=headers):
        count += 1
    return count


def bare_hubspot(info: dict[str, Any]) -> int:
    """Properties, pipelines, owners (live and archived), then every live deal with crmsync's
    properties and every archived deal's id, 100 a page, as raw JSON, over one connection:
    records read."""
    from crmsync.config import load_mapping

    mapping = load_mapping(ROOT / "connectors/hubspot.yaml")
    props = ["hs_lastmodifieddate", "dealstage", "pipeline", "hubspot_owner_id"]
    props += [p for p in mapping.crm_fields() if p not in props]
    hs_info = info["hubspot"]
    client = hubspot.Client.create(
        access_token=hs_info["access_token"], host=hs_info["base_url"], ssl_ca_cert=info["ca_path"]
    )
    client.crm.properties.core_api.get_all(object_type="deals", _preload_content=False)
    client.crm.pipelines.pipelines_api.get_all(object_type="deals", _preload_content=False)
    for archived in (False, True):
        after = None
        while True:  # raw JSON, as crmsync reads it: the client's model objects cost 3x more
            owners = client.crm.owners.owners_api.get_page(
                limit=500, after=after, archived=archived, _preload_content=False
            )
            after = json.loads(owners.data).get("paging", {}).get("next", {}).get("after")
            if not after:
                break
    count = 0
    # one API object, so one connection: hubspot-api-client makes a new client (and a new TLS
    # connection) at every access of `basic_api`; crmsync keeps its own since issue 17
    deals = client.crm.deals.basic_api
    for archived, wanted in ((False, props), (True, ["hs_object_id"])):
        after = None
        while True:
            raw = deals.get_page(
                limit=100, after=after, properties=wanted, archived=archived, _preload_content=False
            )
            body = json.loads(raw.data)
            count += len(body["results"])
            after = body.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
    return count


# ---- crmsync's sync --------------------------------------------------------------------------


def connector(info: dict[str, Any], crm: str) -> Any:
    from crmsync.config import load_mapping
    from crmsync.connectors.hubspot import HubSpotConnector
    from crmsync.connectors.salesforce import SalesforceConnector
    from crmsync.connectors.settings import HubSpotAuth, SalesforceAuth

    ca = Path(info["ca_path"])
    if crm == "sf":
        sf = info["salesforce"]
        auth = SalesforceAuth(
            method="client_credentials",
            login_url=sf["login_url"],
            client_id=sf["client_id"],
            client_secret=sf["client_secret"],
            ca_file=ca,
        )
        return SalesforceConnector("sf", auth, load_mapping(ROOT / "connectors/salesforce.yaml"))
    hs = info["hubspot"]
    hs_auth = HubSpotAuth(access_token=hs["access_token"], base_url=hs["base_url"], ca_file=ca)
    return HubSpotConnector("hs", hs_auth, load_mapping(ROOT / "connectors/hubspot.yaml"))


def child(mode: str, crm: str, info: dict[str, Any], store_url: str, profile: str | None) -> None:
    """One measured part in this (child) process; prints one JSON line of figures."""
    from crmsync.logs import configure

    configure("error")
    out: dict[str, Any] = {}
    _calls(info, crm, reset=True)
    cpu, start = time.process_time(), time.perf_counter()
    if mode == "bare":
        out["records"] = bare_salesforce(info) if crm == "sf" else bare_hubspot(info)
    elif mode == "snapshots":
        out.update(snapshots_child(crm, info, store_url))
    else:
        from crmsync.app.sync import sync
        from crmsync.store import Store

        store = Store.open(store_url)
        conn = connector(info, crm)
        cpu, start = time.process_time(), time.perf_counter()  # the store's migration apart
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            summary = profiler.runcall(sync, store, conn)
            profiler.dump_stats(profile)
        else:
            summary = sync(store, conn)
        out["fetched"] = summary.fetched
        out["history_rows"] = summary.history_rows
        out["seconds"] = time.perf_counter() - start
        out["cpu"] = time.process_time() - cpu
        out["calls"] = _calls(info, crm)
        _calls(info, crm, reset=True)
        again_start = time.perf_counter()
        sync(store, conn)
        out["incremental_seconds"] = time.perf_counter() - again_start
        out["incremental_calls"] = _calls(info, crm)
        # Right after the full pull, the window's look-back (the connector's overlap, 300 s)
        # reads again the deals modified in the minutes before it: the generator's newest,
        # stamped up to the hour (sandbox/generator). So does the next window while the last
        # one ended less than 300 s after them (a bench started in the first minutes of an hour:
        # 4-10 calls instead of 2). One sync 10 minutes on takes the windows past them; another
        # 10 minutes on is the "nothing changed" case the tests assert.
        side = info["salesforce" if crm == "sf" else "hubspot"]["admin_url"]
        clock = _http(info["ca_path"])
        clock.post(side + "/clock", json={"advance_seconds": 600}).raise_for_status()
        sync(store, conn)
        clock.post(side + "/clock", json={"advance_seconds": 600}).raise_for_status()
        _calls(info, crm, reset=True)
        quiet_start = time.perf_counter()
        sync(store, conn)
        out["quiet_seconds"] = time.perf_counter() - quiet_start
        out["quiet_calls"] = _calls(info, crm)
        store.close()
    out.setdefault("seconds", time.perf_counter() - start)
    out.setdefault("cpu", time.process_time() - cpu)
    out.setdefault("calls", _calls(info, crm))
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out), flush=True)


PAIRS = 5  # incremental syncs with and without the snapshot, alternated
SNAPSHOT_TABLES = ("pipeline_snapshots", "pipeline_snapshot_days")


def snapshots_child(crm: str, info: dict[str, Any], store_url: str) -> dict[str, Any]:
    """The sync's cost with the pipeline snapshot: a full sync taking the first snapshot, the
    first report's filling of the window from history, then incremental syncs with nothing
    changed, with and without the snapshot, in alternating pairs on one store; and the snapshot
    table's size."""
    import statistics
    from datetime import UTC, datetime, timedelta

    from crmsync.app import sync as sync_module
    from crmsync.config.report import ReportSettings
    from crmsync.store import Store
    from crmsync.store.snapshots import write_day

    settings = ReportSettings()
    store = Store.open(store_url)
    conn = connector(info, crm)
    spent: list[float] = []
    take = sync_module.take_snapshot

    def timed(*args: Any, **kwargs: Any) -> bool:
        began = time.perf_counter()
        try:
            return take(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - began)

    sync_module.take_snapshot = timed  # type: ignore[assignment]
    out: dict[str, Any] = {}
    start = time.perf_counter()
    summary = sync_module.sync(store, conn, snapshots=settings)
    out["full_seconds"] = time.perf_counter() - start
    out["first_snapshot_seconds"] = spent[-1]
    out["fetched"] = summary.fetched
    from crmsync.app.snapshots import fill_window

    began = time.perf_counter()
    today = datetime.now(UTC).date()
    fill_window(store, conn.connection, settings, stages=conn.mapping.stages, today=today)
    out["fill_seconds"] = time.perf_counter() - began
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(PAIRS):
        for with_snapshot in (False, True) if i % 2 == 0 else (True, False):
            began = time.perf_counter()
            sync_module.sync(store, conn, snapshots=settings if with_snapshot else None)
            times[with_snapshot].append(time.perf_counter() - began)
    out["incremental_without"] = statistics.median(times[False])
    out["incremental_with"] = statistics.median(times[True])
    out["snapshot_in_incremental"] = statistics.median(spent[1:])
    with store.reading("bench: snapshot size") as db:
        out["rows"] = int(db.exec_driver_sql("SELECT count(*) FROM pipeline_snapshots").scalar())
        if db.dialect.name == "sqlite":
            names = ", ".join(f"'{t}'" for t in SNAPSHOT_TABLES)
            sql = f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({names})"
        else:
            sql = " + ".join(f"pg_total_relation_size('{t}')" for t in SNAPSHOT_TABLES)
            sql = f"SELECT {sql}"
        out["bytes"] = int(db.exec_driver_sql(sql).scalar() or 0)
    today = datetime.now(UTC).date()
    rewrites = []
    for day in (today - timedelta(days=400), today):  # a new day, then today's again
        began = time.perf_counter()
        out["today_rows"] = write_day(store, conn.connection, day)
        rewrites.append(time.perf_counter() - began)
    out["write_day_seconds"] = max(rewrites)
    store.close()
    return out


def measure(
    mode: str, crm: str, info_file: str, store_url: str, profile: str | None, src: str | None
) -> Any:
    """Run one part in a child process (with crmsync from `src` when given); its figures."""
    argv = [sys.executable, __file__, "--child", mode, "--crm", crm, "--info", info_file]
    argv += ["--store-url", store_url] + (["--profile", profile] if profile else [])
    env = dict(os.environ, PYTHONPATH=src) if src else None
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        sys.exit(f"{mode} {crm} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def fresh_store(store_url: str | None, tmp: str) -> Iterator[str]:
    """A URL to an empty store: a SQLite file in `tmp`, or a new schema in the PostgreSQL
    database `store_url` names (dropped afterwards)."""
    if store_url is None or not store_url.startswith("postgres"):
        path = Path(tmp) / "bench.db"
        for old in (path, *path.parent.glob("bench.db-*")):  # the last one's WAL too
            old.unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    import psycopg
    import sqlalchemy as sa

    url = sa.make_url(store_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def run(
    n: int,
    crms: list[str],
    store_url: str | None,
    profile: str | None,
    baseline: str | None,
    snapshots: bool = True,
) -> None:
    started = time.perf_counter()
    with sandbox_process(n) as (info, _pid), tempfile.TemporaryDirectory() as tmp:
        info_file = os.path.join(tmp, "sandbox.json")
        Path(info_file).write_text(json.dumps(info))
        print(
            f"{n} opportunities per CRM, store {(store_url or 'sqlite').split(':')[0]} "
            f"(sandbox up in {time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        for crm in crms:
            bare = measure("bare", crm, info_file, "", None, None)
            print(
                f"  {crm} bare client    records={bare['records']:>8d}  "
                f"api_calls={bare['calls']:>6d}  seconds={bare['seconds']:7.2f}  "
                f"cpu={bare['cpu']:7.2f}  peak_mb={bare['peak_mb']:5.0f}",
                flush=True,
            )
            runs = [("crmsync", None)] + ([("baseline", baseline)] if baseline else [])
            for label, src in runs:
                where = profile and f"{profile}.{crm}.{n}.{label}"
                with fresh_store(store_url, tmp) as url:
                    ours = measure("sync", crm, info_file, url, where, src)
                _print(crm, label, bare, ours)
            if snapshots:
                with fresh_store(store_url, tmp) as url:
                    snap = measure("snapshots", crm, info_file, url, None, None)
                _print_snapshots(crm, ours, snap)


def _print(crm: str, label: str, bare: dict[str, Any], ours: dict[str, Any]) -> None:
    print(
        f"  {crm} {label:8s} full  records={ours['fetched']:>8d}  "
        f"api_calls={ours['calls']:>6d}  seconds={ours['seconds']:7.2f}  "
        f"cpu={ours['cpu']:7.2f}  peak_mb={ours['peak_mb']:5.0f}  "
        f"history_rows_written={ours['history_rows']}\n"
        f"  {crm} {label:8s} ratio to the bare client: "
        f"time {ours['seconds'] / bare['seconds']:.2f}x  cpu {ours['cpu'] / bare['cpu']:.2f}x;  "
        f"incremental right after: "
        f"api_calls={ours['incremental_calls']} seconds={ours['incremental_seconds']:.2f};  "
        f"nothing changed: "
        f"api_calls={ours['quiet_calls']} seconds={ours['quiet_seconds']:.2f}",
        flush=True,
    )


def _print_snapshots(crm: str, ours: dict[str, Any], snap: dict[str, Any]) -> None:
    """The snapshot figures: the first one, the steady state, the size. The snapshot's own time
    is measured inside the sync (steady on a busy machine); the paired wall times around it
    carry the machine's noise."""
    without = snap["incremental_without"]
    per_100k = snap["bytes"] / max(snap["rows"], 1) * 100_000 / 1e6
    print(
        f"  {crm} snapshots full sync + first snapshot seconds={snap['full_seconds']:7.2f} "
        f"(without: {ours['seconds']:.2f}; "
        f"the snapshot part {snap['first_snapshot_seconds']:.2f} s: "
        f"today's {snap['today_rows']} open deals)\n"
        f"  {crm} snapshots the first report's 13 weeks rebuilt from history: "
        f"seconds={snap['fill_seconds']:7.2f} ({snap['rows']} rows in all)\n"
        f"  {crm} snapshots incremental, nothing changed (median of {PAIRS} pairs): "
        f"without={without:.3f} s  with={snap['incremental_with']:.3f} s;  "
        f"the snapshot's own time {snap['snapshot_in_incremental'] * 1000:.0f} ms "
        f"({snap['snapshot_in_incremental'] / without:+.0%} of the sync); "
        f"a sync that changed deals writes the day: {snap['write_day_seconds'] * 1000:.0f} ms "
        f"({snap['write_day_seconds'] / without:+.0%})\n"
        f"  {crm} snapshots store size: {snap['bytes'] / 1e6:.1f} MB for {snap['rows']} "
        f"deal-days = {per_100k:.1f} MB per 100k deal-days",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", "-n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--crm", nargs="+", choices=CRMS, default=list(CRMS))
    parser.add_argument(
        "--store-url",
        help="default: a fresh temporary SQLite file; a PostgreSQL URL: a fresh schema in it",
    )
    parser.add_argument("--profile", help="cProfile each sync into PROFILE.<crm>.<n>.<label>")
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also sync with crmsync from this source folder (an export of main), paired",
    )
    parser.add_argument(
        "--no-snapshots",
        dest="snapshots",
        action="store_false",
        help="leave out the pipeline snapshot figures",
    )
    parser.add_argument("--child", choices=("bare", "sync", "snapshots"), help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        info = json.loads(Path(args.info).read_text())
        child(args.child, args.crm[0], info, args.store_url, args.profile)
        return
    for n in args.opportunities:
        run(n, args.crm, args.store_url, args.profile, args.baseline, args.snapshots)


if __name__ == "__main__":
    main()
