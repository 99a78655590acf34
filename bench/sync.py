"""Sync speed and cost: full and incremental syncs of N opportunities per CRM into a store.

Prints, per CRM and size: API calls against the theoretical minimum, records per second, and the
peak memory of the syncing process (the sandbox runs in its own process, as a CRM would).

    .venv/bin/python bench/sync.py --opportunities 10000 100000 [--store-url URL]
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from sandbox_process import sandbox_process

from crmsync.app.sync import sync
from crmsync.config import load_mapping
from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.connectors.salesforce import SalesforceConnector
from crmsync.connectors.settings import HubSpotAuth, SalesforceAuth
from crmsync.store import Store

ROOT = Path(__file__).resolve().parents[1]


def connectors(info: dict[str, Any]) -> tuple[SalesforceConnector, HubSpotConnector]:
    sf, hs, ca = info["salesforce"], info["hubspot"], Path(info["ca_path"])
    sf_auth = SalesforceAuth(
        method="client_credentials",
        login_url=sf["login_url"],
        client_id=sf["client_id"],
        client_secret=sf["client_secret"],
        ca_file=ca,
    )
    hs_auth = HubSpotAuth(access_token=hs["access_token"], base_url=hs["base_url"], ca_file=ca)
    return (
        SalesforceConnector("sf", sf_auth, load_mapping(ROOT / "connectors/salesforce.yaml")),
        HubSpotConnector("hs", hs_auth, load_mapping(ROOT / "connectors/hubspot.yaml")),
    )


def history_rows(info: dict[str, Any]) -> int:
    http = requests.Session()
    http.trust_env = False
    http.verify = info["ca_path"]
    sf = info["salesforce"]
    token = http.post(
        sf["login_url"] + "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sf["client_id"],
            "client_secret": sf["client_secret"],
        },
    ).json()["access_token"]
    answer = http.get(
        sf["instance_url"] + "/services/data/v59.0/query",
        params={"q": "SELECT COUNT() FROM OpportunityHistory"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return int(answer.json()["totalSize"])


def run(n: int, store_url: str | None) -> None:
    with sandbox_process(n) as (info, _pid):
        h = history_rows(info)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(store_url or f"sqlite:///{tmp}/bench.db")
            sf, hs = connectors(info)
            minimum = {
                "sf": 2 + math.ceil(n / 2000) + math.ceil(h / 2000),
                "hs": 5 + math.ceil(n / 100),
            }
            print(
                f"{n} opportunities per CRM, store {store.url.split(':')[0]} "
                f"({h} Salesforce history rows)"
            )
            for conn in (sf, hs):
                start = time.perf_counter()
                summary = sync(store, conn)
                seconds = time.perf_counter() - start
                print(
                    f"  {conn.connection} full         api_calls={summary.api_calls:>6d} "
                    f"(minimum {minimum[conn.connection]})  records={summary.fetched:>7d}  "
                    f"seconds={seconds:6.1f}  records_per_second={summary.fetched / seconds:7.0f}"
                )
                start = time.perf_counter()
                again = sync(store, conn)
                print(
                    f"  {conn.connection} incremental  api_calls={again.api_calls:>6d} "
                    f"(nothing changed)  seconds={time.perf_counter() - start:.2f}"
                )
            store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak_memory_mb={peak:.0f} (syncing process, cumulative)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", "-n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--store-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    from crmsync.logs import configure

    configure("error")
    for n in args.opportunities:
        run(n, args.store_url)


if __name__ == "__main__":
    main()
