"""The lease on both backends: first acquire, renew, standby, expiry takeover, release, races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from crmsync.service.lease import Lease, default_holder
from crmsync.store import Store

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=10)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _lease(store: Store, holder: str, clock: Clock) -> Lease:
    return Lease(store, "service", holder, LEASE, clock=clock)


def test_first_acquire_creates_the_row(store: Store, clock: Clock) -> None:
    """The first worker ever takes the lease, and the row says so."""
    a = _lease(store, "a", clock)
    assert a.current() is None
    assert a.acquire()
    state = a.current()
    assert state is not None
    assert (state.holder, state.acquired_at, state.expires_at) == ("a", T0, T0 + LEASE)


def test_renew_extends_and_keeps_acquired_at(store: Store, clock: Clock) -> None:
    """Renewing moves the expiry forward and keeps when the lease was first taken."""
    a = _lease(store, "a", clock)
    assert a.acquire()
    clock.now = T0 + timedelta(seconds=4)
    assert a.acquire()
    state = a.current()
    assert state is not None
    assert state.acquired_at == T0
    assert state.renewed_at == clock.now
    assert state.expires_at == clock.now + LEASE


def test_second_worker_stands_by_while_the_lease_runs(store: Store, clock: Clock) -> None:
    """Another holder cannot take an unexpired lease, up to its last instant."""
    a, b = _lease(store, "a", clock), _lease(store, "b", clock)
    assert a.acquire()
    assert not b.acquire()
    clock.now = T0 + LEASE  # exactly at expiry: still a's
    assert not b.acquire()
    state = b.current()
    assert state is not None and state.holder == "a"
    assert not b.held_by_me() and a.held_by_me()


def test_standby_takes_over_an_expired_lease(store: Store, clock: Clock) -> None:
    """Once the holder stops renewing, the standby takes the lease; the old holder cannot
    renew it back."""
    a, b = _lease(store, "a", clock), _lease(store, "b", clock)
    assert a.acquire()
    clock.now = T0 + LEASE + timedelta(milliseconds=1)
    assert b.acquire()
    state = b.current()
    assert state is not None
    assert (state.holder, state.acquired_at) == ("b", clock.now)
    assert not a.acquire()  # the old holder woke up late: it is now the standby
    assert not a.held_by_me()


def test_release_hands_over_at_once(store: Store, clock: Clock) -> None:
    """A released lease is free for the standby without waiting for the expiry; releasing
    someone else's lease does nothing."""
    a, b = _lease(store, "a", clock), _lease(store, "b", clock)
    assert a.acquire()
    assert not b.release()
    assert not b.acquire()
    assert a.release()
    clock.now += timedelta(milliseconds=1)
    assert b.acquire()


def test_leases_by_name_are_independent(store: Store, clock: Clock) -> None:
    """Two lease names are two different leases."""
    assert Lease(store, "one", "a", LEASE, clock=clock).acquire()
    assert Lease(store, "two", "b", LEASE, clock=clock).acquire()


@pytest.mark.parametrize("row", ["none", "expired"])
def test_racing_workers_get_exactly_one_lease(store_url: str, row: str) -> None:
    """Many workers trying at once (each with its own connection pool), for a lease never
    taken or one whose holder died: exactly one wins."""
    stores = [Store.open(store_url) for _ in range(6)]
    try:
        if row == "expired":
            long_ago = datetime.now(UTC) - timedelta(hours=1)
            assert Lease(stores[0], "service", "dead", LEASE, clock=lambda: long_ago).acquire()
        leases = [Lease(s, "service", default_holder(), LEASE) for s in stores]
        barrier = threading.Barrier(len(leases))
        results: list[bool] = [False] * len(leases)

        def attempt(i: int) -> None:
            barrier.wait()
            results[i] = leases[i].acquire()

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(leases))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(results) == 1
        state = leases[0].current()
        assert state is not None and state.holder == leases[results.index(True)].holder
    finally:
        for s in stores:
            s.close()


def test_duration_must_be_positive(store: Store) -> None:
    """A lease of zero seconds is a programming mistake."""
    with pytest.raises(ValueError):
        Lease(store, "service", "a", timedelta(0))
