"""Idempotency keys: the same intention always gets the same key, and no two intentions share one.

A task's key is carried into the CRM (an external-id field), so after a crash the executor can
ask the CRM whether that exact task exists before sending it again.
"""

from __future__ import annotations

import hashlib
from datetime import date


def make_key(kind: str, *parts: object) -> str:
    """`kind-` plus 32 hex characters of a hash over the parts (stable across runs and hosts)."""
    text = "\x1f".join(str(p) for p in parts)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def task_key(workflow: str, rule: str, opp_key: str, occurrence: int, reminder: int) -> str:
    """The task for one occurrence of a rule firing on an opportunity (reminder 0 = the first)."""
    return make_key("task", workflow, rule, opp_key, occurrence, reminder)


def complete_key(task: str) -> str:
    return make_key("done", task)


def due_key(task: str, reminder: int) -> str:
    return make_key("due", task, reminder)


def digest_key(connection: str, owner: str, day: date) -> str:
    """An owner's one digest of a day, whatever the workflows and however many runs."""
    return make_key("digest", connection, owner, day.isoformat())


def flag_key(connection: str, opp_key: str, field: str, value: str | None, planned_at: str) -> str:
    return make_key("flag", connection, opp_key, field, value, planned_at)
