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

from crmsync.cli.needs_sandbox import require_sandbox


@click.command()
@click.option(
    "--opportunities",
    "-n",
    default=1000,
    show_default=True,
    type=click.IntRange(0),
    help="How many opportunities (Salesforce) and deals (HubSpot) to generate.",
)
@click.option(
    "--seed",
    default=7,
    show_default=True,
    type=int,
    help="Seed for the generated data; the same seed gives the same records.",
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
    "--json",
    "as_json",
    is_flag=True,
    help="Print the connection details as one JSON line (for scripts).",
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
    as_json: bool,
) -> None:
    """Run a local Salesforce and HubSpot with generated pipeline data, until Ctrl-C.

    Point crmsync (or any client) at the URLs it prints to try things out without a real CRM.
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
    )
    sb = Sandbox(config).start()
    try:
        info = connection_info(sb)
        if as_json:
            click.echo(json.dumps(info), nl=True)
        else:
            print_info(info, opportunities)
        sys.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
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
    """What a client needs to reach a running sandbox."""
    c = sb.salesforce.credentials
    return {
        "ca_path": str(sb.ca_path),
        "salesforce": {
            "login_url": sb.salesforce.url,
            "instance_url": sb.salesforce.url,
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "username": c.username,
            "password": c.password,
            "security_token": c.security_token,
            "refresh_token": c.refresh_token,
            "access_token": c.static_access_token,
            "jwt_private_key_path": str(sb.salesforce.jwt_private_key_path),
            "admin_url": sb.salesforce.url + "/__sandbox",
        },
        "hubspot": {
            "base_url": sb.hubspot.url,
            "access_token": sb.hubspot.access_token,
            "admin_url": sb.hubspot.url + "/__sandbox",
        },
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
