"""The (rule, deal) pairs an evaluation could not decide, so that apply keeps their findings open.

A condition that raises, or a text that fails, says nothing about whether a finding was fixed:
closing the rep's task or clearing the flag on it would act on no evidence. Bounded: a rule (or
the scope) that fails on more than LIMIT deals is held undecided whole, not deal by deal (a
misconfigured condition can fail on every deal of a million).
"""

from __future__ import annotations

LIMIT = 10_000  # deals kept one by one per rule; past it, the rule is undecided everywhere
SCOPE = None  # the rule given for a failing scope condition: every rule of the deal


class Undecided:
    """Collects `evaluate`'s on_undecided calls; answers whether a finding was undecided."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._keys: dict[str | None, set[str]] = {}
        self._whole: set[str | None] = set()

    def __call__(self, rule: str | None, key: str) -> None:
        if rule in self._whole:
            return
        keys = self._keys.setdefault(rule, set())
        keys.add(key)
        if len(keys) > self._limit:
            self._whole.add(rule)
            del self._keys[rule]

    def __bool__(self) -> bool:
        return bool(self._keys or self._whole)

    def covers(self, rule: str, key: str) -> bool:
        """Whether the finding of `rule` on deal `key` could not be decided."""
        if rule in self._whole or SCOPE in self._whole:
            return True
        return key in self._keys.get(rule, ()) or key in self._keys.get(SCOPE, ())
