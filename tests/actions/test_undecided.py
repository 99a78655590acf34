"""Undecided findings: by rule and deal, by deal for a failing scope, and whole rules past the
bound, so that memory stays small when a condition fails on every deal."""

from __future__ import annotations

from crmsync.actions.undecided import Undecided


def test_a_rule_on_a_deal() -> None:
    u = Undecided()
    assert not u
    u("stale", "sf:1")
    assert u
    assert u.covers("stale", "sf:1")
    assert not u.covers("stale", "sf:2") and not u.covers("other", "sf:1")


def test_a_failing_scope_covers_every_rule_of_that_deal() -> None:
    u = Undecided()
    u(None, "sf:1")
    assert u.covers("stale", "sf:1") and u.covers("other", "sf:1")
    assert not u.covers("stale", "sf:2")


def test_past_the_bound_a_rule_is_undecided_everywhere_and_its_keys_dropped() -> None:
    u = Undecided(limit=3)
    for i in range(4):
        u("stale", f"sf:{i}")
    assert u.covers("stale", "sf:999")  # every deal of that rule
    assert not u.covers("other", "sf:0")
    assert u._keys == {}  # nothing kept deal by deal any more
    u(None, "sf:5")
    for i in range(4):
        u(None, f"sf:{10 + i}")
    assert u.covers("other", "sf:999")  # a scope failing past the bound: every rule
