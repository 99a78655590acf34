"""How fast the sandbox serves: page through N opportunities with each real client.

Later benchmarks (sync, write-back) run against the sandbox, so it must not be their bottleneck.
Prints, per CRM: records, API calls against the minimum, seconds, records per second; plus the
time to generate the data and the process's peak memory.

    .venv/bin/python bench/sandbox.py --opportunities 100000
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import hubspot
import requests
from simple_salesforce import Salesforce

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from crmsync.sandbox import Sandbox, SandboxConfig

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


def bench_salesforce(sb: Sandbox, n: int) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sb.ca_path)
    c = sb.salesforce.credentials
    token = session.post(
        sb.salesforce.url + "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": c.client_id,
            "client_secret": c.client_secret,
        },
    ).json()
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=session,
        version="59.0",
        object_pairs_hook=None,
    )
    sb.salesforce.calls.reset()
    start = time.perf_counter()
    count = sum(
        1 for _ in sf.query_all_iter(f"SELECT {SF_FIELDS} FROM Opportunity", include_deleted=True)
    )
    elapsed = time.perf_counter() - start
    calls = sb.salesforce.calls.total()
    _row("salesforce (query/queryMore, 2000 a page)", count, calls, math.ceil(n / 2000), elapsed)


def bench_hubspot(sb: Sandbox, n: int) -> None:
    hs = hubspot.Client.create(
        access_token=sb.hubspot.access_token, host=sb.hubspot.url, ssl_ca_cert=str(sb.ca_path)
    )
    api = hs.crm.deals.basic_api
    sb.hubspot.calls.reset()
    start = time.perf_counter()
    count, after = 0, None
    while True:
        page = api.get_page(limit=100, after=after, properties=HS_PROPS)
        count += len(page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    elapsed = time.perf_counter() - start
    calls = sb.hubspot.calls.total()
    _row("hubspot (deals list, 100 a page)", count, calls, math.ceil(n / 100), elapsed)


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
        print(f"{n} opportunities per CRM")
        start = time.perf_counter()
        sb = Sandbox(SandboxConfig(opportunities=n, now=datetime(2026, 11, 20, tzinfo=UTC)))
        print(f"  generate+load seconds={time.perf_counter() - start:.2f}")
        sb.start()
        try:
            bench_salesforce(sb, n)
            bench_hubspot(sb, n)
        finally:
            sb.stop()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak_memory_mb={peak_mb:.0f} (whole process: sandbox and clients)")


if __name__ == "__main__":
    main()
