"""`crmsync test`: run the examples a workflow file carries, like a test runner for admins.

Each example is an opportunity (and optionally its history) with the rules it should fire; the
example passes when exactly those rules fire, evaluated by the same code as a real plan, and
every task text of the rules that fire renders for it (a text that fails is in `errors`), and
what those rules would write matches the example's `expect:` (`expectations`; a part that
differs is in `mismatches`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crmsync.errors import InvalidInput
from crmsync.model import FIELDS, Opportunity
from crmsync.model.normalize import NormalizeError, convert
from crmsync.model.records import HistoryRow
from crmsync.store.history import HistoryLike
from crmsync.workflows.expectations import Mismatch, mismatches
from crmsync.workflows.explain import explain
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.plan import Firing, evaluate_stream
from crmsync.workflows.schema import Example


@dataclass
class ExampleResult:
    """One example's outcome: what fired against what was expected."""

    workflow: str
    name: str
    expected: list[str]
    fired: list[str]
    reasons: dict[str, list[str]]
    errors: dict[str, str] = field(default_factory=dict)  # rule: why its task did not render
    mismatches: list[Mismatch] = field(default_factory=list)  # `expect:` parts that differ
    out_of_scope: str | None = None  # why the example's deal is outside the workflow's scope
    why_not: dict[str, str] = field(default_factory=dict)  # expected rule: why it did not fire

    @property
    def passed(self) -> bool:
        return (
            not self.errors and not self.mismatches and sorted(self.expected) == sorted(self.fired)
        )


def run_examples(loaded: LoadedWorkflow) -> list[ExampleResult]:
    results = []
    for i, example in enumerate(loaded.workflow.examples):
        opp, history = build(example, loaded, i)
        firings: list[Firing] = []
        errors: dict[str, str] = {}
        evaluate_stream(
            loaded,
            iter([(opp, history)]),
            opp.connection,
            example.now,
            on_firing=firings.append,
            on_set_aside=functools.partial(_first_error, errors),
        )
        fired = {f.rule_id: f for f in firings}
        scope, why_not = _why_not(loaded, opp, history, example, set(fired))
        results.append(
            ExampleResult(
                loaded.name,
                example.name,
                list(example.fires),
                [f.rule_id for f in firings],
                {f.rule_id: f.reasons for f in firings},
                errors,
                [
                    m
                    for rule, expectation in example.expect.items()
                    if rule in fired  # a rule that did not fire fails on `fires` already
                    for m in mismatches(rule, expectation, fired[rule].actions)
                ],
                scope,
                why_not,
            )
        )
    return results


def _why_not(
    loaded: LoadedWorkflow,
    opp: Opportunity,
    history: Sequence[HistoryLike],
    example: Example,
    fired: set[str],
) -> tuple[str | None, dict[str, str]]:
    """For an example whose expected rules did not all fire: the scope that left its deal out,
    or, per rule, why it did not fire (the same words as `plan --opportunity`)."""
    missing = [r for r in example.fires if r not in fired]
    if not missing:
        return None, {}
    e = explain(loaded, opp, history, example.now)
    if not e.in_scope:
        values = "  ".join(f"{k}={v!r}" for k, v in e.scope_values.items())
        return f"{e.scope}{f' (read: {values})' if values else ''}", {}
    return None, {r.rule: r.why for r in e.rules if r.rule in missing}


def _first_error(errors: dict[str, str], rule: str, key: str, error: str) -> None:
    errors.setdefault(rule, error)


def build(
    example: Example, loaded: LoadedWorkflow, index: int
) -> tuple[Opportunity, list[HistoryRow]]:
    """The Opportunity and history rows an example describes, typed like synced data."""
    raw = dict(example.opportunity)
    slug = re.sub(r"[^a-z0-9]+", "-", example.name.lower()).strip("-") or f"example-{index}"
    values: dict[str, Any] = {
        "connection": str(raw.pop("connection", "example")),
        "native_id": str(raw.pop("native_id", slug)),
        "source": str(raw.pop("source", "example")),
        "custom": dict(raw.pop("custom", {}) or {}),
    }
    where = f"{loaded.path}: examples[{index}] ({example.name})"
    for name, value in raw.items():
        try:
            values[name] = convert(FIELDS[name].type, value, f"opportunity.{name}")
        except NormalizeError as e:
            raise InvalidInput(f"{where}: {e}") from None
    values.setdefault("modified_at", example.now)
    values.setdefault("name", example.name)
    opp = Opportunity(**values)
    history = []
    for j, row in enumerate(example.history):
        try:
            changed = convert("datetime", row.get("changed_at"), "changed_at")
            history.append(
                HistoryRow(
                    opp.key,
                    str(row["field"]),
                    _text(row.get("old_value")),
                    _text(row.get("new_value")),
                    changed or datetime.now(UTC),
                    str(row.get("origin", "crm")),
                )
            )
        except (KeyError, NormalizeError) as e:
            raise InvalidInput(f"{where}: history[{j}]: {e}") from None
    return opp, history


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
