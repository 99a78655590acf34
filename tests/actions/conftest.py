"""Fixtures for the write-back tests: a sandbox, a store and a live workflow, wired together."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.store import Store
from tests.actions.world import World, config_for, write_workflow
from tests.conftest import make_sandbox


@pytest.fixture
def world(store: Store, store_url: str, tmp_path: Path) -> Iterator[World]:
    """250 opportunities per CRM, synced once, and the `wb` workflow (live) in a folder."""
    sb = make_sandbox(250)
    try:
        write_workflow(tmp_path / "workflows")
        w = World(sb, store, config_for(sb, store_url, tmp_path / "workflows"))
        w.sync()
        yield w
    finally:
        sb.stop()
