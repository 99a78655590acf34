"""`crmsync sandbox --salesforce-orgs N --hubspot-portals M`: many tenants, each printed as a
crmsync connection that a config file can use as it is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.config import load_config
from tests.crm import ROOT


@contextmanager
def _sandbox(*args: str) -> Iterator[subprocess.Popen[str]]:
    """`crmsync sandbox ARGS` in a process of its own, stopped with SIGTERM afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmsync.cli", "sandbox", "-n", "20", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err


def _printed_until_admin(proc: subprocess.Popen[str]) -> list[str]:
    """The lines the sandbox prints for people, up to its last one (`  Admin ...`)."""
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("  Admin"):
            return lines
    raise AssertionError("the sandbox ended before printing its details:\n" + "\n".join(lines))


def test_each_tenant_is_printed_as_a_connection_a_config_syncs_from(tmp_path: Path) -> None:
    """Two orgs and three portals: the printed `connections:` block, pasted into a config in
    a config/ folder, loads, and `crmsync sync` syncs the 20 deals of each tenant."""
    with _sandbox("--salesforce-orgs", "2", "--hubspot-portals", "3") as proc:
        lines = _printed_until_admin(proc)
        start = lines.index("connections:")
        end = lines.index("", start)
        block = "\n".join(lines[start:end])
        names = [c["name"] for c in yaml.safe_load(block)["connections"]]
        assert names == [
            "sandbox-sf",
            "sandbox-sf-1",
            "sandbox-hs",
            "sandbox-hs-1",
            "sandbox-hs-2",
        ]
        (tmp_path / "connectors").symlink_to(ROOT / "connectors", target_is_directory=True)
        config = tmp_path / "config" / "tenants.yaml"
        config.parent.mkdir()
        store = tmp_path / "crmsync.db"
        config.write_text(f"store:\n  url: sqlite:///{store}\n{block}\n", encoding="utf-8")
        loaded = load_config(config)
        assert [c.name for c in loaded.connections] == names
        orgs = [c for c in loaded.connections if c.type == "salesforce"]
        assert orgs[0].auth.client_id != orgs[1].auth.client_id  # type: ignore[union-attr]
        synced = subprocess.run(
            [sys.executable, "-m", "crmsync.cli", "sync", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert synced.returncode == 0, synced.stderr
    for name in names:
        assert f"{name}: full ok fetched=20 inserted=20 " in synced.stdout, synced.stdout


def test_json_lists_every_tenant_and_keeps_the_first_where_it_was() -> None:
    """`--json`: "salesforce" and "hubspot" are still the first org and portal; the lists
    hold all of them, each with its own credentials."""
    with _sandbox("--salesforce-orgs", "3", "--hubspot-portals", "2", "--json") as proc:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
    orgs, portals = info["salesforce_orgs"], info["hubspot_portals"]
    assert len(orgs) == 3 and len(portals) == 2
    assert info["salesforce"] == orgs[0] and info["hubspot"] == portals[0]
    assert len({o["instance_url"] for o in orgs}) == 3
    assert {o["login_url"] for o in orgs} == {orgs[0]["instance_url"]}
    assert len({o["client_id"] for o in orgs}) == 3
    assert len({p["access_token"] for p in portals}) == 2
    assert {p["base_url"] for p in portals} == {portals[0]["base_url"]}


def test_one_org_and_portal_by_default_and_zero_is_refused() -> None:
    """The defaults are one of each; fewer than one is a usage error naming the option."""
    for option in ("--salesforce-orgs", "--hubspot-portals"):
        param = next(p for p in main.commands["sandbox"].params if p.opts == [option])
        assert param.default == 1
        result = CliRunner().invoke(main, ["sandbox", option, "0"])
        assert result.exit_code == 2
        assert option in result.output
