"""HubSpot calls share a connection: hubspot-api-client makes a new ApiClient, with its own
connection pool, at every access of an API object (`client.crm.deals.basic_api`), so a pull that
asked for it at each call opened a TLS connection a page."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3

from crmsync.app.sync import sync
from crmsync.store import Store
from tests.conftest import make_sandbox
from tests.crm import hs_connector


def test_a_full_pull_opens_a_connection_per_api_not_per_page(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    for pool in (urllib3.HTTPConnectionPool, urllib3.HTTPSConnectionPool):
        original = pool._new_conn

        def counted(self: Any, _original: Any = original) -> Any:
            opened.append(self.host)
            return _original(self)

        monkeypatch.setattr(pool, "_new_conn", counted)
    sb = make_sandbox(opportunities=1000)
    try:
        summary = sync(store, hs_connector(sb))
    finally:
        sb.stop()
    assert summary.inserted == 1000
    assert summary.api_calls >= 15  # ten pages of deals, the reference data, the archived list
    # one each for properties, pipelines, owners (live and archived), the count and the pages
    assert len(opened) <= 6, opened
