"""What the service reads and writes through the store: leases, the last good syncs, a ping."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from crmsync.store import LeaseState, Store, StoreError
from tests.store.builders import CONN, NOW, OBJ

LEASE = timedelta(seconds=10)


def test_lease_take_renew_release(store: Store) -> None:
    """The first holder takes the lease; another waits until it expires or is released; the
    holder's renewals keep when it was first taken."""
    assert store.lease("svc") is None
    assert store.take_lease("svc", "a", now=NOW, expires_at=NOW + LEASE)
    assert not store.take_lease("svc", "b", now=NOW + LEASE, expires_at=NOW + 2 * LEASE)
    later = NOW + timedelta(seconds=4)
    assert store.take_lease("svc", "a", now=later, expires_at=later + LEASE)
    assert store.lease("svc") == LeaseState("svc", "a", NOW, later + LEASE, later)
    assert not store.release_lease("svc", "b", now=later)  # not b's to release
    assert store.release_lease("svc", "a", now=later)
    after = later + timedelta(microseconds=1)
    assert store.take_lease("svc", "b", now=after, expires_at=after + LEASE)
    state = store.lease("svc")
    assert state is not None and (state.holder, state.acquired_at) == ("b", after)
    assert store.lease("other") is None


def test_last_successful_sync_and_full_pass(store: Store) -> None:
    """The last good sync's end, and the last good full sync or reconcile's start; failed runs
    and other connections do not count."""
    assert store.last_successful_sync(CONN) is None and store.last_full_pass(CONN) is None
    full = store.start_run(CONN, OBJ, "full", NOW)
    store.finish_run(full, status="ok", finished_at=NOW + timedelta(minutes=1))
    later = NOW + timedelta(hours=1)
    incremental = store.start_run(CONN, OBJ, "incremental", later)
    store.finish_run(incremental, status="ok", finished_at=later + timedelta(seconds=5))
    failed = store.start_run(CONN, OBJ, "reconcile", later + timedelta(hours=1))
    store.finish_run(failed, status="failed", finished_at=later + timedelta(hours=2))
    other = store.start_run("hs", "deals", "full", later + timedelta(hours=3))
    store.finish_run(other, status="ok", finished_at=later + timedelta(hours=4))
    assert store.last_successful_sync(CONN) == later + timedelta(seconds=5)
    assert store.last_full_pass(CONN) == NOW
    assert store.last_successful_sync("hs") == later + timedelta(hours=4)


def test_ping(store: Store) -> None:
    """A reachable store answers the service's readiness check."""
    store.ping()


def test_ping_fails_as_a_store_error(tmp_path: Path) -> None:
    """A database that cannot be reached any more is a one-line StoreError naming the check."""
    folder = tmp_path / "gone"
    with Store.open(f"sqlite:///{folder / 's.db'}") as store:
        store.ping()
        store.close()  # pooled connections go; the next ping connects again
        shutil.rmtree(folder)
        folder.write_text("the database's folder is a file now")
        with pytest.raises(StoreError, match="check database"):
            store.ping()
