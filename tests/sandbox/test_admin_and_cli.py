"""The sandbox admin HTTP endpoints and `crmsync sandbox`, as other processes use them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import requests

from crmsync.sandbox import Sandbox
from tests.conftest import NOW, hs_client, sf_client


def _admin(sb_url: str, ca: str) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = ca
    return s


def test_admin_counts_faults_and_records_over_http(sandbox: Sandbox) -> None:
    """Counts, fault rules and record edits are reachable over HTTP without counting as calls."""
    url = sandbox.salesforce.url + "/__sandbox"
    http = _admin(url, str(sandbox.ca_path))
    sf = sf_client(sandbox)
    sf.query("SELECT Id FROM User LIMIT 1")
    assert http.get(url + "/calls").json()["counts"] == {"oauth_token": 1, "query": 1}
    added = http.post(url + "/faults", json={"kind": "unavailable", "endpoint": "query"})
    assert added.status_code == 201 and added.json()["times"] == 1
    assert http.post(url + "/faults", json={"kind": "bogus"}).status_code == 400
    opp = next(iter(sandbox.salesforce.org.tables["Opportunity"]))
    edited = http.patch(
        f"{url}/records/Opportunity/{opp}",
        json={"fields": {"NextStep": "edited", "SystemModstamp": "2026-11-20T13:00:00Z"}},
    )
    assert edited.status_code == 200
    rec = sandbox.salesforce.org.get("Opportunity", opp)
    assert rec["NextStep"] == "edited"
    assert rec["SystemModstamp"] == "2026-11-20T13:00:00.000+0000"
    assert http.delete(f"{url}/records/Opportunity/{opp}?hard=true").status_code == 200
    assert sandbox.salesforce.org.get("Opportunity", opp) is None
    http.delete(url + "/calls")
    assert http.get(url + "/calls").json()["counts"] == {}


def test_admin_touch_gives_many_records_one_timestamp(sandbox: Sandbox) -> None:
    """`touch` sets one hs_lastmodifieddate on many deals at once."""
    url = sandbox.hubspot.url + "/__sandbox"
    http = _admin(url, str(sandbox.ca_path))
    ids = [str(i) for i in list(sandbox.hubspot.portal.objects["deals"])[:25]]
    at = (NOW + timedelta(hours=2)).isoformat()
    assert http.post(url + "/touch", json={"type": "deals", "ids": ids, "at": at}).ok
    stamps = {
        sandbox.hubspot.portal.objects["deals"][int(i)].properties["hs_lastmodifieddate"]
        for i in ids
    }
    assert stamps == {"2026-11-20T14:00:00.000Z"}


def test_admin_edit_while_client_reads(sandbox: Sandbox) -> None:
    """Records created and archived through admin show up in the client's next read."""
    url = sandbox.hubspot.url + "/__sandbox"
    http = _admin(url, str(sandbox.ca_path))
    hs = hs_client(sandbox)
    new_id = http.post(
        url + "/records/deals",
        json={
            "fields": {
                "dealname": "Admin deal",
                "dealstage": "qualifiedtobuy",
                "pipeline": "default",
            }
        },
    ).json()["id"]
    got = hs.crm.deals.basic_api.get_by_id(new_id, properties=["dealname", "hs_is_closed"])
    assert got.properties["dealname"] == "Admin deal"
    assert got.properties["hs_is_closed"] == "false"
    http.delete(f"{url}/records/deals/{new_id}")
    archived = hs.crm.deals.basic_api.get_by_id(new_id, archived=True)
    assert archived.archived is True


def test_sandbox_command_serves_until_sigterm(tmp_path: object) -> None:
    """`crmsync sandbox --json` prints where it listens, serves clients, and exits 0 on SIGTERM."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmsync.cli", "sandbox", "--opportunities", "50", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        http = _admin("", info["ca_path"])
        token = http.post(
            info["salesforce"]["login_url"] + "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": info["salesforce"]["client_id"],
                "client_secret": info["salesforce"]["client_secret"],
            },
        ).json()["access_token"]
        answer = http.get(
            info["salesforce"]["instance_url"] + "/services/data/v59.0/query",
            params={"q": "SELECT COUNT() FROM Opportunity"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.json()["totalSize"] == 50
        deals = http.get(
            info["hubspot"]["base_url"] + "/crm/v3/objects/deals",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {info['hubspot']['access_token']}"},
        )
        assert len(deals.json()["results"]) == 50
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_sandbox_port_in_use_and_bad_state_dir_are_one_line_errors(sandbox: Sandbox) -> None:
    """A taken port or an unwritable state folder ends with one line and exit 2, no traceback."""
    from click.testing import CliRunner

    from crmsync.cli import main

    taken = sandbox.salesforce.url.rsplit(":", 1)[1]
    result = CliRunner().invoke(main, ["sandbox", "-n", "5", "--salesforce-port", taken])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"crmsync: error: cannot serve the salesforce sandbox on 127.0.0.1:{taken}: "
        "the port is already in use"
    )
    result = CliRunner().invoke(main, ["sandbox", "-n", "5", "--state-dir", "/proc/nope"])
    assert result.exit_code == 2
    assert result.output.startswith(
        "crmsync: error: cannot write the sandbox's CA and key to /proc/nope:"
    )
