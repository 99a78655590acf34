"""`crmsync sandbox`: a local Salesforce and HubSpot with generated data, until Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
import yaml

from crmsync.cli.needs_sandbox import require_sandbox

# Each org is a server of its own (threads, a port): a few dozen tenants is already a lot.
MAX_TENANTS = 100


@click.command()
@click.option(
    "--opportunities",
    "-n",
    default=1000,
    show_default=True,
    type=click.IntRange(0),
    help="How many opportunities (Salesforce) and deals (HubSpot) to generate, in each org "
    "and portal.",
)
@click.option(
    "--seed",
    default=7,
    show_default=True,
    type=int,
    help="Seed for the generated data; the same seed gives the same records (further orgs "
    "and portals take the next seeds, so each has records of its own).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--salesforce-port",
    default=0,
    type=click.IntRange(0, 65535),
    help="Port for the Salesforce API (default: any free port).",
)
@click.option(
    "--hubspot-port",
    default=0,
    type=click.IntRange(0, 65535),
    help="Port for the HubSpot API (default: any free port).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the test CA and JWT key (default: a temporary folder).",
)
@click.option(
    "--search-delay",
    default=2.0,  # the sandbox's SEARCH_DELAY (not imported: the CLI loads the sandbox lazily)
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds before HubSpot search sees a write, like HubSpot's index lag (0: at once).",
)
@click.option(
    "--enforce-rate-limits",
    is_flag=True,
    help="Answer 429 when HubSpot's per-second and ten-second limits are exceeded.",
)
@click.option(
    "--salesforce-orgs",
    default=1,
    show_default=True,
    type=click.IntRange(1, MAX_TENANTS),
    help="How many separate Salesforce orgs to run, as if for several companies or business "
    "units: each has its own login, opportunities, users and API limits. All log in at the "
    "first org's URL (--salesforce-port); the others get free ports of their own.",
)
@click.option(
    "--hubspot-portals",
    default=1,
    show_default=True,
    type=click.IntRange(1, MAX_TENANTS),
    help="How many separate HubSpot portals (accounts) to run, each with its own token, deals, "
    "owners and API limits. All share one URL; the token picks the portal.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the connection details as one JSON line (for scripts); every org and portal "
    "is in its lists salesforce_orgs and hubspot_portals.",
)
def sandbox(
    opportunities: int,
    seed: int,
    host: str,
    salesforce_port: int,
    hubspot_port: int,
    state_dir: Path | None,
    search_delay: float,
    enforce_rate_limits: bool,
    salesforce_orgs: int,
    hubspot_portals: int,
    as_json: bool,
) -> None:
    """Run a local Salesforce and HubSpot with generated pipeline data, until Ctrl-C.

    Point crmsync (or any client) at the URLs it prints to try things out without a real CRM.
    With several orgs or portals it prints each one as a crmsync connection to paste into a
    config file.
    """
    require_sandbox("crmsync sandbox")
    from crmsync.sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(
        opportunities=opportunities,
        seed=seed,
        host=host,
        salesforce_port=salesforce_port,
        hubspot_port=hubspot_port,
        state_dir=state_dir,
        search_delay=search_delay,
        enforce_rate_limits=enforce_rate_limits,
        salesforce_orgs=salesforce_orgs,
        hubspot_portals=hubspot_portals,
    )
    sb = Sandbox(config).start()
    try:
        # before the details are printed: a script that reads them may stop the sandbox at once
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        info = connection_info(sb)
        if as_json:
            click.echo(json.dumps(info), nl=True)
        else:
            if len(info["salesforce_orgs"]) + len(info["hubspot_portals"]) > 2:
                print_tenants(info, opportunities)
            else:
                print_info(info, opportunities)
        sys.stdout.flush()
        stop.wait()
    finally:
        _stop_within(sb, STOP_SECONDS)


# A stopped sandbox is gone within this many seconds: scripts that start it in the background
# and kill it at the end (the README's walk-through) must not be left waiting on its output. The
# servers themselves stop within a second whatever the clients' connections do (server.py); this
# stays as the backstop for a request still inside the sandbox's code, which no hang-up wakes
# (a "slow" fault sleeps its whole delay).
STOP_SECONDS = 10.0


def _stop_within(sb: Any, seconds: float) -> None:
    """Stop the servers; if that takes longer than `seconds`, end the process anyway (its state
    lives in memory: nothing is lost)."""
    done = threading.Thread(target=sb.stop, daemon=True)
    done.start()
    done.join(seconds)
    if done.is_alive():
        sys.stderr.write(f"crmsync: the sandbox did not stop in {seconds:.0f} s; exiting\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # threads that will not stop: end the process


def connection_info(sb: Any) -> dict[str, Any]:
    """What a client needs to reach a running sandbox: every org and portal (`tenants_info`),
    and the first of each under "salesforce" and "hubspot", as before there were several."""
    info: dict[str, Any] = sb.tenants_info()
    return {
        "ca_path": info["ca_path"],
        "salesforce": info["salesforce_orgs"][0],
        "hubspot": info["hubspot_portals"][0],
        **info,
    }


def print_info(info: dict[str, Any], n: int) -> None:
    """The connection details for people: URLs, credentials, the CA to trust."""
    sf, hs = info["salesforce"], info["hubspot"]
    click.echo(f"crmsync sandbox is running with {n} opportunities in each CRM. Ctrl-C stops it.")
    click.echo("")
    click.echo(f"  Salesforce  {sf['instance_url']}   (login URL is the same)")
    click.echo(f"              client_id={sf['client_id']} client_secret={sf['client_secret']}")
    click.echo(f"              username={sf['username']} password={sf['password']}")
    click.echo(f"              access token (no login needed): {sf['access_token']}")
    click.echo(f"              JWT bearer private key: {sf['jwt_private_key_path']}")
    click.echo(f"  HubSpot     {hs['base_url']}")
    click.echo(f"              private app token: {hs['access_token']}")
    click.echo(f"  TLS CA      {info['ca_path']}   (trust this file, e.g. REQUESTS_CA_BUNDLE)")
    click.echo(f"  Admin       {sf['admin_url']}/calls, {hs['admin_url']}/faults, ...")


def print_tenants(info: dict[str, Any], n: int) -> None:
    """Several orgs and portals for people: each as a crmsync connection, ready to paste into a
    config file (a config's folder is where its relative mapping paths start)."""
    orgs, portals = info["salesforce_orgs"], info["hubspot_portals"]
    click.echo(
        f"crmsync sandbox is running {len(orgs)} Salesforce orgs and {len(portals)} HubSpot "
        f"portals, with {n} opportunities in each. Ctrl-C stops it."
    )
    click.echo("")
    click.echo("Each org and portal as a crmsync connection. Paste them into a config file kept in")
    click.echo("the config/ folder, next to config/sandbox.yaml, so that the mapping paths work.")
    click.echo("")
    click.echo("connections:")
    for index, org in enumerate(orgs):
        click.echo(_connection_yaml(_org_connection(index, org, info["ca_path"])), nl=False)
    for index, portal in enumerate(portals):
        click.echo(_connection_yaml(_portal_connection(index, portal, info["ca_path"])), nl=False)
    click.echo("")
    click.echo(f"  TLS CA      {info['ca_path']}   (trust this file, e.g. REQUESTS_CA_BUNDLE)")
    click.echo("  Admin       each connection's admin_url above: .../calls, .../faults, ...")


def _name(crm: str, index: int) -> str:
    """sandbox-sf, sandbox-sf-1, ...: the first as in config/sandbox.yaml, the others numbered
    as their credentials are (admin@org1...)."""
    return f"sandbox-{crm}-{index}" if index else f"sandbox-{crm}"


def _org_connection(index: int, org: dict[str, Any], ca_path: str) -> tuple[list[str], Any]:
    """One org's connection (client credentials) and, as comments, its other credentials."""
    notes = [
        f"Salesforce org {org['org_id']}, its own instance at {org['instance_url']}",
        f"  other methods: username={org['username']} password={org['password']}"
        f" security_token={org['security_token']}",
        f"  access token (no login needed): {org['access_token']}",
        f"  JWT bearer private key: {org['jwt_private_key_path']}",
        f"  admin_url: {org['admin_url']}",
    ]
    connection = {
        "name": _name("sf", index),
        "type": "salesforce",
        "mapping": "../connectors/salesforce.yaml",
        "auth": {
            "method": "client_credentials",
            "login_url": org["login_url"],
            "client_id": org["client_id"],
            "client_secret": org["client_secret"],
            "ca_file": ca_path,
        },
    }
    return notes, connection


def _portal_connection(index: int, portal: dict[str, Any], ca_path: str) -> tuple[list[str], Any]:
    """One portal's connection: its private app token picks it on the shared URL."""
    notes = [f"HubSpot portal {portal['hub_id']}", f"  admin_url: {portal['admin_url']}"]
    connection = {
        "name": _name("hs", index),
        "type": "hubspot",
        "mapping": "../connectors/hubspot.yaml",
        "auth": {
            "method": "private_app",
            "access_token": portal["access_token"],
            "base_url": portal["base_url"],
            "ca_file": ca_path,
        },
    }
    return notes, connection


def _connection_yaml(entry: tuple[list[str], Any]) -> str:
    """One item of a config's `connections:` list, its notes as comments above it."""
    notes, connection = entry
    body = yaml.safe_dump([connection], sort_keys=False, default_flow_style=False)
    lines = [f"  # {note}" for note in notes] + [f"  {line}" for line in body.splitlines()]
    return "\n".join(lines) + "\n"
