"""The columnar evaluation's loop: per frame, the scope, each rule's firings, then the firings
handed on in the per-deal engine's order (by deal key, then rule order) with its counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import polars as pl

from crmsync.store import Store
from crmsync.workflows.columnar.engine import (
    Emitted,
    Layout,
    frames,
    layout,
    log,
    reasons_of,
    subject_for,
    whole_records,
)
from crmsync.workflows.context import LazyContext, memoized
from crmsync.workflows.derived import Derived
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.plan import Firing, OnFiring, PlanSummary, derived_needs_of
from crmsync.workflows.render import ActionPlan, reason_renderer
from crmsync.workflows.schema import CustomRule
from crmsync.workflows.templates import TemplateError
from crmsync.workflows.why_not import value_of


def plan_layout(loaded: LoadedWorkflow, durations: StageDurations | None) -> Layout:
    """Where each rule of `loaded` runs (for --explain-engine and for `evaluate_columnar`)."""
    conditions = {s: memoized(c) for s, c in loaded.conditions.items()}
    return layout(
        loaded,
        conditions,
        durations,
        lambda r: reason_renderer(loaded, r) if isinstance(r, CustomRule) else None,
    )


def evaluate_columnar(
    loaded: LoadedWorkflow,
    store: Store,
    connection: str,
    now: datetime,
    *,
    version: str,
    canonical_of: Callable[[str | None], str | None],
    durations: StageDurations | None,
    on_firing: OnFiring | None = None,
    on_set_aside: Callable[[str, str, str], None] | None = None,
) -> PlanSummary:
    """`plan.evaluate_stream`'s result over the store's columns (every deal of `connection`
    must have a current history summary: the caller checks)."""
    wf = loaded.workflow
    summary = PlanSummary(wf.name, connection)
    conditions = {s: memoized(c) for s, c in loaded.conditions.items()}
    lay = layout(
        loaded,
        conditions,
        durations,
        lambda r: reason_renderer(loaded, r) if isinstance(r, CustomRule) else None,
    )
    log.debug(
        "plan.engine", workflow=wf.name, connection=connection, layout="; ".join(lay.describe())
    )
    calendar = loaded.calendar
    today = calendar.today(now) if calendar is not None else now.date()
    pipelines = sorted(wf.scope.pipelines) if wf.scope.pipelines else None
    any_closed = any(p.closed_too for p in lay.rules)
    scope_cond = conditions.get(wf.scope.condition) if wf.scope.condition else None
    actions = {p.rule.id: ActionPlan(loaded, p.rule) for p in lay.rules} if on_firing else {}
    from crmsync.workflows.derived import work_plan

    want = work_plan(derived_needs_of(loaded))
    context = LazyContext(sorted({v for c in loaded.conditions.values() for v in c.variables}))
    subject = subject_for(today, context)
    logged: set[str | None] = set()
    render_logged: set[str] = set()

    def failed(rule: str | None, key: str, error: Exception) -> None:
        summary.condition_errors += 1
        if rule in logged:
            return
        logged.add(rule)
        log.warning(
            "plan.condition_failed",
            workflow=wf.name,
            connection=connection,
            rule=rule or "scope",
            opportunity=key,
            error=f"{type(error).__name__}: {error}"[:300],
        )

    def render_failed(rule: str, key: str, error: TemplateError) -> None:
        summary.render_errors += 1
        if on_set_aside is not None:
            on_set_aside(rule, key, str(error))
        if rule in render_logged:
            return
        render_logged.add(rule)
        log.warning(
            "plan.render_failed",
            workflow=wf.name,
            connection=connection,
            rule=rule,
            opportunity=key,
            error=str(error)[:300],
        )

    def frame_context(frame: pl.DataFrame, row: int, names: tuple[str, ...]) -> dict[str, Any]:
        return {n: frame[n][row] for n in names}

    for frame in frames(store, connection, version, lay, now, today):
        summary.evaluated += frame.height
        base = pl.lit(True)
        if pipelines is not None:
            base = base & pl.col("pipeline").is_in(pipelines).fill_null(False)
        if not any_closed:
            base = base & ~pl.col("is_closed")
        frame = frame.with_columns(base.alias("_base"))
        keys: list[str] = frame["key"].to_list()
        whole: dict[str, tuple[Any, Derived]] = {}
        needed: set[int] = set()
        # the scope: columns, then CEL for unsure rows, or CEL (per deal) for every row
        if scope_cond is not None and (lay.scope is None or lay.scope_per_deal):
            candidates = frame["_base"].arg_true().to_list()
            whole.update(
                _records(
                    store,
                    [keys[i] for i in candidates],
                    version,
                    now,
                    canonical_of,
                    durations,
                    want,
                )
            )
            inside = []
            for i in candidates:
                opp, derived = whole[keys[i]]
                subject.reset(opp, derived)
                try:
                    if scope_cond(subject.cel()):
                        inside.append(i)
                except Exception as e:
                    failed(None, keys[i], e)
            mask = pl.Series([False] * frame.height)
            if inside:
                mask = mask.scatter(inside, True)
            frame = frame.with_columns(mask.alias("_scope"))
        elif lay.scope is not None and scope_cond is not None:
            frame = frame.with_columns((pl.col("_base") & lay.scope).alias("_scope"))
            unsure = frame.select((pl.col("_base") & lay.scope.is_null()).arg_true()).to_series()
            names = scope_cond.variables
            fixed = []
            for i in unsure.to_list():
                try:
                    if scope_cond(frame_context(frame, i, names)):
                        fixed.append(i)
                except Exception as e:
                    failed(None, keys[i], e)
            if unsure.len():
                scope_col = frame["_scope"].fill_null(False)
                if fixed:
                    scope_col = scope_col.scatter(fixed, True)
                frame = frame.with_columns(scope_col.alias("_scope"))
        else:
            frame = frame.with_columns(pl.col("_base").alias("_scope"))
        frame = frame.with_columns(pl.col("_scope").fill_null(False))
        summary.in_scope += int(frame["_scope"].sum())
        closed = frame["is_closed"]
        emitted: list[Emitted] = []
        per_deal: list[tuple[int, int]] = []  # (order, row) decided on the whole record
        in_scope_rows = frame["_scope"].arg_true()
        for order, placed in enumerate(lay.rules):
            allowed = (
                pl.col("_scope") if placed.closed_too else pl.col("_scope") & ~pl.col("is_closed")
            )
            vec = placed.vec
            if vec is None:
                rows = frame.select(allowed.arg_true()).to_series().to_list()
                per_deal.extend((order, i) for i in rows)
                needed.update(rows)
                continue
            work = frame.with_columns([e.alias(n) for n, e in vec.extra]) if vec.extra else frame
            fired = work.select((allowed & vec.candidate).arg_true()).to_series()
            if vec.unsure is not None:
                unsure = work.select((allowed & vec.unsure).arg_true()).to_series()
                if unsure.len():
                    unsure_rows = set(unsure.to_list())
                    per_deal.extend((order, i) for i in unsure_rows)
                    needed.update(unsure_rows)
                    fired = fired.filter(~fired.is_in(unsure.implode()))
            if placed.needs_record:
                emitted.extend(Emitted(i, order, None) for i in fired.to_list())
                needed.update(fired.to_list())
                continue
            for i, reasons in zip(fired.to_list(), reasons_of(work, vec, fired), strict=True):
                if reasons:
                    emitted.append(Emitted(i, order, reasons))
        del in_scope_rows, closed
        if on_firing is not None:
            needed.update(e.row for e in emitted)
        missing = [keys[i] for i in sorted(needed) if keys[i] not in whole]
        whole.update(_records(store, missing, version, now, canonical_of, durations, want))
        # the per-deal engine's part: its checks on the whole record
        for order, i in per_deal:
            placed = lay.rules[order]
            opp, derived = whole[keys[i]]
            subject.reset(opp, derived)
            try:
                assert placed.check is not None
                reasons = placed.check(subject)
            except TemplateError as e:
                render_failed(placed.rule.id, keys[i], e)
                continue
            except Exception as e:
                failed(placed.rule.id, keys[i], e)
                continue
            if reasons:
                emitted.append(Emitted(i, order, reasons))
        emitted.sort(key=lambda e: (keys[e.row], e.order))
        last_row = -1
        owners_name = frame["owner_name"]
        owners_id = frame["owner_id"]
        for e in emitted:
            placed = lay.rules[e.order]
            rule = placed.rule
            key = keys[e.row]
            reasons = e.reasons
            record = whole.get(key)
            if reasons is None:  # a custom rule's reason: its template, over the whole deal
                assert record is not None and placed.check is not None
                subject.reset(*record)
                try:
                    reasons = placed.check(subject)
                except TemplateError as err:
                    render_failed(rule.id, key, err)
                    continue
                if not reasons:
                    continue
            built = None
            if on_firing is not None:
                assert record is not None
                try:
                    built = actions[rule.id].build(record[0], record[1], today, reasons)
                except TemplateError as err:
                    render_failed(rule.id, key, err)
                    continue
            owner = owners_name[e.row] or owners_id[e.row] or "(no owner)"
            summary.firings += 1
            summary.by_rule[rule.id] += 1
            summary.by_owner[owner] += 1
            if e.row != last_row:
                last_row = e.row
                summary.opportunities_fired += 1
            if on_firing is not None and built is not None and record is not None:
                opp, derived = record
                firing = Firing(wf.name, rule.id, actions[rule.id].title, rule.kind, opp, reasons)
                firing._actions = built
                if isinstance(rule, CustomRule):
                    subject.reset(opp, derived)
                    names = conditions[rule.condition].variables
                    firing.values = {n: value_of(n, opp, derived, subject) for n in names}
                on_firing(firing)
    return summary


def _records(
    store: Store,
    keys: list[str],
    version: str,
    now: datetime,
    canonical_of: Any,
    durations: StageDurations | None,
    want: Any,
) -> dict[str, tuple[Any, Derived]]:
    if not keys:
        return {}
    return whole_records(store, keys, version, now, canonical_of, durations, want)
