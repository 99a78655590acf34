"""The columnar evaluation: a workflow over a connection's deals a frame at a time, each rule a
vectorised test, its reasons written once per distinct value; whole records are read only for
the deals that fire (their task texts) and for what runs on the per-deal engine.

What runs where is decided once per workflow (`Layout`, shown by `crmsync plan
--explain-engine`): a built-in rule or a condition inside the CEL subset runs on columns; a CEL
function without a vectorised twin, a derived field that needs the whole history (weighted
amount, stage percentile, timestamps) sends that rule (or the scope) to the per-deal engine.
Rows where a compiled condition is unsure (a null compared for order, a NaN) are answered by the
`cel` package, row by row, as the per-deal engine answers them. The result is the per-deal
engine's, firing for firing, reason for reason (tests/workflows/test_columnar.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
import structlog

from crmsync.model import Opportunity
from crmsync.store import Store
from crmsync.store.columnar import read_frames, readable
from crmsync.store.deal_records import records
from crmsync.workflows.columnar.builtin import NotVectorised, Vector, vector
from crmsync.workflows.columnar.cel import compile_condition
from crmsync.workflows.columnar.frame import DERIVED_FROM, cel_types, prepare, store_columns
from crmsync.workflows.derived import Derived, derive_from, derive_wanted
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.rules import Check, Subject, applies_to_closed, compile_rule
from crmsync.workflows.schema import CustomRule, Rule

log = structlog.get_logger("crmsync.workflows")
BATCH = 50_000


@dataclass
class Placed:
    """One rule and where it runs: `vec` on columns, else `check` deal by deal (`why`)."""

    rule: Rule
    closed_too: bool
    vec: Vector | None
    check: Check | None
    why: str = ""
    needs_record: bool = False  # its reason is a template over the whole deal


@dataclass
class Layout:
    """A workflow split between the columnar path and the per-deal engine."""

    rules: list[Placed]
    scope: pl.Expr | None  # the compiled scope condition (None: none, or per deal)
    scope_per_deal: bool
    columns: list[str]
    derived: list[str]
    notes: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """One line per rule (and the scope): columnar or per-deal, and why."""
        lines = [
            f"scope: {'per-deal (' + self.notes[0] + ')' if self.scope_per_deal else 'columnar'}"
        ]
        for placed in self.rules:
            where = "columnar" if placed.vec is not None else f"per-deal ({placed.why})"
            lines.append(f"{placed.rule.id}: {where}")
        return lines


def layout(
    loaded: LoadedWorkflow,
    conditions: dict[str, Any],
    durations: StageDurations | None,
    explain: Callable[[Rule], Any],
) -> Layout:
    """Decide, once, where each rule runs and which columns the frames need."""
    wf = loaded.workflow
    types = cel_types()
    frame_names = set(types) | set(DERIVED_FROM)
    readable_types = {n: t for n, t in types.items() if n in DERIVED_FROM or readable(n)}

    def compiled(source: str) -> pl.Expr | None:
        variables = loaded.conditions[source].variables
        if any(v not in readable_types for v in variables):
            return None
        return compile_condition(source, readable_types)

    needed: set[str] = {"key", "pipeline", "is_closed", "owner_id", "owner_name"}
    placed: list[Placed] = []
    for rule in wf.rules:
        closed_too = wf.scope.include_closed or applies_to_closed(rule)
        check = compile_rule(
            rule, conditions=conditions, durations=durations, explain=explain(rule)
        )
        if isinstance(rule, CustomRule):
            cond = compiled(rule.condition)
            if cond is None:
                placed.append(Placed(rule, closed_too, None, check, "its condition"))
                continue
            vec = Vector(
                cond.fill_null(False), (), lambda: None, frozenset(), unsure=cond.is_null()
            )
            needed.update(loaded.conditions[rule.condition].variables)
            placed.append(Placed(rule, closed_too, vec, check, needs_record=True))
            continue
        try:
            vec = vector(rule, durations, compiled)
        except NotVectorised as e:
            placed.append(Placed(rule, closed_too, None, check, str(e)))
            continue
        needed.update(vec.columns)
        for source in getattr(rule, "requirements", lambda: {})().values():
            for item in source:
                if hasattr(item, "condition"):
                    needed.update(loaded.conditions[item.condition].variables)
        placed.append(Placed(rule, closed_too, vec, check))
    scope_expr, per_deal, notes = None, False, []
    if wf.scope.condition:
        scope_expr = compiled(wf.scope.condition)
        if scope_expr is None:
            per_deal = True
            notes.append("its condition is outside the CEL subset")
        else:
            needed.update(loaded.conditions[wf.scope.condition].variables)
    derived = sorted(n for n in needed if n in DERIVED_FROM)
    columns = store_columns(n for n in needed if n in frame_names or readable(n))
    return Layout(placed, scope_expr, per_deal, columns, derived, notes)


def frames(
    store: Store,
    connection: str,
    version: str,
    lay: Layout,
    now: datetime,
    today: date,
    *,
    readers: int = 1,
    others_after: Callable[[], None] | None = None,
) -> Iterator[pl.DataFrame]:
    """The connection's deals, prepared, a batch at a time (`readers`, `others_after`: see
    `read_frames`)."""
    for frame in read_frames(
        store,
        connection,
        version,
        lay.columns,
        batch_size=BATCH,
        readers=readers,
        others_after=others_after,
    ):
        yield prepare(frame, lay.derived, now, today)


# A firing's reasons as one text (a column of plain strings is far cheaper to build than one
# of lists): joined by a separator, or as JSON behind a marker when a reason holds either.
REASONS = pl.String
SEP, AS_JSON = "\x1f", "\x1e"


def joined(reasons: list[str] | None) -> str | None:
    """`reasons` as one text (None for none), `split` gives them back."""
    if not reasons:
        return None
    if any(SEP in r or AS_JSON in r for r in reasons):
        return AS_JSON + json.dumps(reasons)
    return SEP.join(reasons)


def split(reasons: str) -> list[str]:
    """A firing's reasons from their `REASONS` text."""
    if reasons.startswith(AS_JSON):
        return list(json.loads(reasons[1:]))
    return reasons.split(SEP)


def whole_records(
    store: Store,
    keys: list[str],
    version: str,
    now: datetime,
    canonical_of: Any,
    durations: StageDurations | None,
    want: Any,
) -> dict[str, tuple[Opportunity, Derived]]:
    """The deals `keys` read whole, with the derived fields the workflow reads (`want`)."""
    if not keys:
        return {}
    found = records(store, keys, version)
    out: dict[str, tuple[Opportunity, Derived]] = {}
    for key, (opp, summary) in found.items():
        if summary is None:  # no current summary: derived from its history, as with_summaries
            derived = derive_wanted(opp, store.history(key), now, canonical_of, durations, want)
        else:
            derived = derive_from(opp, summary, now, canonical_of, durations, want)
        out[key] = (opp, derived)
    return out


def subject_for(today: date, context: Any) -> Subject:
    from crmsync.workflows.context import NO_DERIVED, NO_OPPORTUNITY

    return Subject(NO_OPPORTUNITY, NO_DERIVED, today, context.of)
