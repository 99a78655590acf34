"""Syncing a whole config: one connection's failure never stops the others, and every run
ends `ok`, `stopped` or `failed` whatever ends it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from crmsync.app.runner import run_syncs
from crmsync.app.sync import sync
from crmsync.errors import CrmUnavailable
from crmsync.sandbox import Fault, Sandbox
from crmsync.store import Store
from tests.actions.world import config_dict
from tests.conftest import make_sandbox
from tests.crm import connector

CRMS = ["salesforce", "hubspot"]
NAME = {"salesforce": "sf", "hubspot": "hs"}
OTHER = {"salesforce": "hubspot", "hubspot": "salesforce"}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A small sandbox of its own."""
    sandbox = make_sandbox(opportunities=30)
    try:
        yield sandbox
    finally:
        sandbox.stop()


def write_config(folder: Path, sb: Sandbox, store_url: str) -> Path:
    """A config file syncing both sandbox CRMs (fast retries) into `store_url`."""
    (folder / "workflows").mkdir(parents=True, exist_ok=True)
    path = folder / "crmsync.yaml"
    data: dict[str, Any] = config_dict(sb, store_url, folder / "workflows")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def side(sb: Sandbox, crm: str) -> Any:
    return sb.salesforce if crm == "salesforce" else sb.hubspot


def outage(sb: Sandbox, crm: str) -> None:
    """The CRM answers 503 to every call from now on (its login included)."""
    side(sb, crm).faults.add(Fault("unavailable", endpoint="*", times=None, rate=1.0))


@pytest.mark.parametrize("down", CRMS)
def test_one_crm_outage_does_not_stop_the_other(
    tmp_path: Path, sb: Sandbox, store_url: str, down: str
) -> None:
    """With one CRM answering 503, the other connection is still synced, and the failed one
    is reported as failed and transient, with the CRM's words."""
    outage(sb, down)
    summaries = run_syncs(write_config(tmp_path, sb, store_url))
    by_name = {s.connection: s for s in summaries}
    assert set(by_name) == {"sf", "hs"}
    failed, synced = by_name[NAME[down]], by_name[NAME[OTHER[down]]]
    assert synced.status == "ok" and synced.inserted == 30
    assert failed.status == "failed"
    assert isinstance(failed.failure, CrmUnavailable) and failed.failure.transient
    assert "503" in (failed.error or "") and "kept failing" in (failed.error or "")
    assert failed.fetched == 0
    with Store.open(store_url) as store:
        assert store.count(NAME[OTHER[down]]) == 30
        assert store.runs(NAME[down])[0]["status"] == "failed"
        assert store.runs(NAME[OTHER[down]])[0]["status"] == "ok"


# ---- every run ends ------------------------------------------------------------------------
@pytest.mark.parametrize("crm", CRMS)
@pytest.mark.parametrize(
    ("raised", "status"),
    [(KeyboardInterrupt, "stopped"), (OverflowError, "failed"), (RuntimeError, "failed")],
)
def test_a_run_ends_whatever_ends_it(
    store: Store, crm: str, raised: type[BaseException], status: str
) -> None:
    """Ctrl-C (stopped) or an exception that is not crmsync's (failed) after the first page:
    the run is recorded as ended, never left `running`, the exception goes on, and the page
    already stored stays for the next sync to resume from."""
    sb = make_sandbox(opportunities=30)
    try:
        conn = connector(sb, crm)

        def interrupt(_summary: Any) -> None:
            raise raised("out of the blue")

        with pytest.raises(raised):
            sync(store, conn, progress=interrupt)
        (run,) = store.runs(conn.connection)
        assert run["status"] == status and run["finished_at"] is not None
        assert run["fetched"] == 30
        said = "interrupted" if raised is KeyboardInterrupt else f"{raised.__name__}: out of"
        assert said in run["error"]
        assert store.count(conn.connection) == 30
        assert sync(store, connector(sb, crm)).status == "ok"
    finally:
        sb.stop()
