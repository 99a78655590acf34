"""How fast the sandbox serves: page through N opportunities with each real client.

Later benchmarks (sync, write-back) run against the sandbox, so it must not be their bottleneck.
Prints, per CRM: records, API calls against the minimum, seconds, records per second; plus the
time to generate the data and the process's peak memory.

    .venv/bin/python bench/sandbox.py --opportunities 100000
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from typing import Any

import hubspot
import requests
from sandbox_process import sandbox_process
from simple_salesforce import Salesforce

SF_FIELDS = (
    "Id, Name, StageName, Amount, CurrencyIsoCode, Probability, CloseDate, NextStep, "
    "IsClosed, IsWon, ForecastCategoryName, OwnerId, Owner.Name, Owner.Email, AccountId, "
    "Account.Name, LastActivityDate, CreatedDate, SystemModstamp, Economic_Buyer__c, "
    "Decision_Criteria__c, Champion__c, Metrics__c, Identified_Pain__c, IsDeleted"
)
HS_PROPS = [
    "dealname",
    "amount",
    "deal_currency_code",
    "dealstage",
    "pipeline",
    "closedate",
    "hs_next_step",
    "hubspot_owner_id",
    "notes_last_updated",
    "hs_lastmodifieddate",
    "economic_buyer",
    "decision_criteria",
    "champion",
    "metrics",
    "identified_pain",
]


def _http(ca_path: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = ca_path
    return session


def _calls(http: requests.Session, admin_url: str, reset: bool = False) -> int:
    if reset:
        http.delete(admin_url + "/calls").raise_for_status()
        return 0
    return int(http.get(admin_url + "/calls").json()["total"])


def bench_salesforce(info: dict[str, Any], n: int) -> None:
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
        object_pairs_hook=None,
    )
    admin = _http(info["ca_path"])
    _calls(admin, sf_info["admin_url"], reset=True)
    start = time.perf_counter()
    count = sum(
        1 for _ in sf.query_all_iter(f"SELECT {SF_FIELDS} FROM Opportunity", include_deleted=True)
    )
    elapsed = time.perf_counter() - start
    calls = _calls(admin, sf_info["admin_url"])
    _row("salesforce (query/queryMore, 2000 a page)", count, calls, math.ceil(n / 2000), elapsed)


def bench_hubspot(info: dict[str, Any], n: int) -> None:
    hs_info = info["hubspot"]
    hs = hubspot.Client.create(
        access_token=hs_info["access_token"], host=hs_info["base_url"], ssl_ca_cert=info["ca_path"]
    )
    api = hs.crm.deals.basic_api
    admin = _http(info["ca_path"])
    _calls(admin, hs_info["admin_url"], reset=True)
    start = time.perf_counter()
    count, after = 0, None
    while True:
        page = api.get_page(limit=100, after=after, properties=HS_PROPS)
        count += len(page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    elapsed = time.perf_counter() - start
    calls = _calls(admin, hs_info["admin_url"])
    _row("hubspot (deals list via client models)", count, calls, math.ceil(n / 100), elapsed)
    # The same pages without the client's model objects: what the sandbox itself serves.
    _calls(admin, hs_info["admin_url"], reset=True)
    start = time.perf_counter()
    count, after = 0, None
    while True:
        raw = api.get_page(limit=100, after=after, properties=HS_PROPS, _preload_content=False)
        body = json.loads(raw.data)
        count += len(body["results"])
        if "paging" not in body:
            break
        after = body["paging"]["next"]["after"]
    elapsed = time.perf_counter() - start
    calls = _calls(admin, hs_info["admin_url"])
    _row("hubspot (deals list, raw JSON)", count, calls, math.ceil(n / 100), elapsed)


def _row(label: str, count: int, calls: int, minimum: int, seconds: float) -> None:
    print(
        f"  {label:44s} records={count:>8d}  api_calls={calls:>6d} (minimum {minimum})  "
        f"seconds={seconds:7.2f}  records_per_second={count / seconds:>9.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", "-n", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    for n in args.opportunities:
        print(f"{n} opportunities per CRM (sandbox in its own process)")
        start = time.perf_counter()
        with sandbox_process(n) as (info, pid):
            print(f"  generate+load+start seconds={time.perf_counter() - start:.2f}")
            bench_salesforce(info, n)
            bench_hubspot(info, n)
            with open(f"/proc/{pid}/status") as status:
                peak = next(line for line in status if line.startswith("VmHWM"))
            print(f"  sandbox peak_memory_mb={int(peak.split()[1]) / 1024:.0f}")
        client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  client peak_memory_mb={client_peak:.0f}")


if __name__ == "__main__":
    main()
