"""The columnar evaluation's loop: per frame, the scope, each rule's firings, then the firings
handed on in the per-deal engine's order (by deal key, then rule order) with its counts."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import polars as pl

from crmsync.store import Store
from crmsync.workflows.columnar.engine import (
    REASONS,
    Layout,
    frames,
    joined,
    layout,
    log,
    split,
    subject_for,
    whole_records,
)
from crmsync.workflows.context import LazyContext, memoized
from crmsync.workflows.derived import Derived
from crmsync.workflows.firing import (
    FailureLog,
    Firing,
    OnFiring,
    OnUndecided,
    PlanSummary,
    derived_needs_of,
)
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.render import ActionPlan, reason_renderer
from crmsync.workflows.schema import CustomRule
from crmsync.workflows.templates import TemplateError
from crmsync.workflows.why_not import value_of


def _settled(ready: Callable[[], None]) -> Callable[[], None]:
    """`ready` that only waits: a failed count is raised where the deals are decided (a crash
    that is not an Exception, a library's panic, where the reads are waiting)."""

    def wait() -> None:
        with contextlib.suppress(Exception):
            ready()

    return wait


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
    durations_ready: Callable[[], None] | None = None,
    on_firing: OnFiring | None = None,
    on_set_aside: Callable[[str, str, str], None] | None = None,
    actions_on_read: bool = False,
    on_undecided: OnUndecided | None = None,
) -> PlanSummary:
    """`plan.evaluate_stream`'s result over the store's columns (every deal of `connection`
    must have a current history summary: the caller checks). `durations` may still be being
    counted: `durations_ready` returns once it is, and is called before any deal is decided."""
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
    failures = FailureLog(wf.name, connection, on_set_aside, on_undecided)

    def failed(rule: str | None, key: str, error: Exception) -> None:
        summary.condition_errors += 1
        failures.condition(rule, key, error)

    def render_failed(rule: str, key: str, error: TemplateError) -> None:
        summary.render_errors += 1
        failures.render(rule, key, error)

    def frame_context(frame: pl.DataFrame, row: int, names: tuple[str, ...]) -> dict[str, Any]:
        return {n: frame[n][row] for n in names}

    # two readers of a big SQLite store at once; while the stage stays are being counted,
    # one (measured: three readers on two cores were slower than two)
    settled = None if durations_ready is None else _settled(durations_ready)
    for frame in frames(
        store, connection, version, lay, now, today, readers=2, others_after=settled
    ):
        if durations_ready is not None:
            durations_ready()
            durations_ready = None
        summary.evaluated += frame.height
        base = pl.lit(True)
        if pipelines is not None:
            base = base & pl.col("pipeline").is_in(pipelines).fill_null(False)
        if not any_closed:
            base = base & ~pl.col("is_closed")
        fresh = pl.col("s_version").is_not_null()
        frame = frame.with_row_index("_row")
        stale = frame.filter(base & ~fresh)["_row"].to_list()  # no current summary
        frame = frame.with_columns((base & fresh).alias("_base"))
        keys: list[str] = frame["key"].to_list()
        whole: dict[str, tuple[Any, Derived]] = {}

        def load(rows: Any, keys: list[str] = keys, whole: dict[str, Any] = whole) -> None:
            missing = [keys[i] for i in sorted(set(rows)) if keys[i] not in whole]
            whole.update(whole_records(store, missing, version, now, canonical_of, durations, want))

        # the scope: columns, then CEL for unsure rows, or CEL (per deal) for every row
        if scope_cond is not None and (lay.scope is None or lay.scope_per_deal):
            candidates = frame["_base"].arg_true().to_list()
            load(candidates)
            inside = []
            for i in candidates:
                subject.reset(*whole[keys[i]])
                try:
                    if scope_cond(subject.cel()):
                        inside.append(i)
                except Exception as e:
                    failed(None, keys[i], e)
            mask = pl.Series("_scope", [False] * frame.height)
            if inside:
                mask = mask.scatter(inside, True)
            frame = frame.with_columns(mask)
        elif lay.scope is not None and scope_cond is not None:
            frame = frame.with_columns((pl.col("_base") & lay.scope).alias("_scope"))
            unsure = frame.select((pl.col("_base") & lay.scope.is_null()).arg_true()).to_series()
            if unsure.len():
                names = scope_cond.variables
                fixed = []
                for i in unsure.to_list():
                    try:
                        if scope_cond(frame_context(frame, i, names)):
                            fixed.append(i)
                    except Exception as e:
                        failed(None, keys[i], e)
                scope_col = frame["_scope"].fill_null(False)
                if fixed:
                    scope_col = scope_col.scatter(fixed, True)
                frame = frame.with_columns(scope_col.alias("_scope"))
        else:
            frame = frame.with_columns(pl.col("_base").alias("_scope"))
        frame = frame.with_columns(pl.col("_scope").fill_null(False))
        summary.in_scope += int(frame["_scope"].sum())
        columnar, per_deal, by_record = _rule_firings(frame, lay)
        if stale:  # deals the sync has not summarized yet: the per-deal engine, whole
            load(stale)
            for i in stale:
                opp, derived = whole[keys[i]]
                if scope_cond is not None:
                    subject.reset(opp, derived)
                    try:
                        if not scope_cond(subject.cel()):
                            continue
                    except Exception as e:
                        failed(None, keys[i], e)
                        continue
                summary.in_scope += 1
                per_deal.extend(
                    (order, i)
                    for order, placed in enumerate(lay.rules)
                    if placed.closed_too or not opp.is_closed
                )
        load([i for _, i in per_deal] + [i for _, i in by_record])
        python: list[tuple[int, str, int]] = []  # (row, reasons joined, order)
        for order, i in per_deal + by_record:
            placed = lay.rules[order]
            subject.reset(*whole[keys[i]])
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
                python.append((i, str(joined(reasons)), order))
        parts = [*columnar]
        if python:
            rows, reasons_, orders = zip(*python, strict=True)
            parts.append(
                pl.DataFrame(
                    {"_row": list(rows), "reasons": list(reasons_), "_order": list(orders)},
                    schema={"_row": pl.UInt32, "reasons": REASONS, "_order": pl.UInt32},
                )
            )
        if not parts:
            continue
        fired = pl.concat(parts).sort("_row", "_order")
        if on_firing is None:
            _count(summary, frame, fired, [p.rule.id for p in lay.rules])
            continue
        load(fired["_row"].to_list())
        last_row = -1
        for i, text, order in fired.iter_rows():
            reasons = split(text)
            placed = lay.rules[order]
            rule = placed.rule
            key = keys[i]
            opp, derived = whole[key]
            built = None
            if not (actions_on_read and actions[rule.id].renders_text):  # see plan.evaluate_stream
                try:
                    built = actions[rule.id].build(opp, derived, today, reasons)
                except TemplateError as err:
                    render_failed(rule.id, key, err)
                    continue
            summary.firings += 1
            summary.by_rule[rule.id] += 1
            summary.by_owner[opp.owner_name or opp.owner_id or "(no owner)"] += 1
            if i != last_row:
                last_row = i
                summary.opportunities_fired += 1
            plan = actions[rule.id]
            firing = Firing(wf.name, rule.id, plan.title, rule.kind, opp, reasons)
            if built is None:  # actions_on_read: a task text, built when read
                firing.make_actions = partial(plan.build, opp, derived, today, reasons)
                firing.has_task = True
            else:
                firing._actions = built
            if isinstance(rule, CustomRule):
                subject.reset(opp, derived)
                names = conditions[rule.condition].variables
                firing.values = {n: value_of(n, opp, derived, subject) for n in names}
            on_firing(firing)
    if durations_ready is not None:  # no deal read: the pass's errors are still raised
        durations_ready()
    return summary


def _rule_firings(
    frame: pl.DataFrame, lay: Layout
) -> tuple[list[pl.DataFrame], list[tuple[int, int]], list[tuple[int, int]]]:
    """Every rule's firings in a frame, in a few passes: one query marks each rule's firing,
    unsure and per-deal rows; one more groups each rule's firings by the values its reasons
    read; `decide` runs per group. Returns the firings found on columns (`_row`, `reasons`,
    `_order`), the (rule, row) pairs the per-deal engine decides, and the (rule, row) firings
    whose reasons come from the whole record."""
    lf = frame.lazy()
    lists: list[tuple[str, int, pl.Expr]] = []  # (kind, order, mask column)
    grouped: list[tuple[int, list[str]]] = []
    for order, placed in enumerate(lay.rules):
        allowed = pl.col("_scope")
        if not placed.closed_too:
            allowed = allowed & ~pl.col("is_closed")
        vec = placed.vec
        if vec is None:
            lists.append(("per_deal", order, allowed))
            continue
        if vec.extra:
            lf = lf.with_columns([e.alias(n) for n, e in vec.extra])
        fires = allowed & vec.candidate
        if vec.unsure is not None:
            unsure = vec.unsure.fill_null(False)
            lf = lf.with_columns((allowed & unsure).alias(f"_u{order}"))
            lists.append(("per_deal", order, pl.col(f"_u{order}")))
            fires = fires & ~unsure
        lf = lf.with_columns(fires.fill_null(False).alias(f"_f{order}"))
        if placed.needs_record:
            lists.append(("by_record", order, pl.col(f"_f{order}")))
            continue
        names = [f"_i{order}_{j}" for j in range(len(vec.inputs))]
        lf = lf.with_columns([e.alias(n) for e, n in zip(vec.inputs, names, strict=True)])
        grouped.append((order, names))
    marked = lf.collect()
    per_deal: list[tuple[int, int]] = []
    by_record: list[tuple[int, int]] = []
    if lists:
        picked = marked.select(
            [pl.col("_row").filter(m).implode().alias(str(i)) for i, (_, _, m) in enumerate(lists)]
        ).row(0)
        for (kind, order, _), rows in zip(lists, picked, strict=True):
            (per_deal if kind == "per_deal" else by_record).extend((order, i) for i in rows)
    queries = []
    for order, names in grouped:
        fired = marked.lazy().filter(pl.col(f"_f{order}"))
        if names:
            queries.append(fired.group_by(names).agg(pl.col("_row")))
        else:
            queries.append(fired.select(pl.col("_row").implode()))
    found: list[pl.DataFrame] = []
    for (order, names), groups in zip(grouped, pl.collect_all(queries), strict=True):
        if not groups.height or (not names and not groups["_row"].list.len()[0]):
            continue
        vec = lay.rules[order].vec
        assert vec is not None
        decide = vec.decide
        if names:
            answers = [joined(decide(*values)) for values in groups.select(names).iter_rows()]
        else:
            answers = [joined(decide())]
        found.append(
            pl.DataFrame(
                {
                    "_row": groups["_row"],
                    "reasons": pl.Series(answers, dtype=REASONS),
                    "_order": pl.Series([order] * groups.height, dtype=pl.UInt32),
                }
            )
        )
    if found:
        every = pl.concat(found).filter(pl.col("reasons").is_not_null()).explode("_row")
        return [every], per_deal, by_record
    return [], per_deal, by_record


def _count(summary: PlanSummary, frame: pl.DataFrame, fired: pl.DataFrame, ids: list[str]) -> None:
    """The counts of a frame's firings, without a Python step per firing."""
    summary.firings += fired.height
    summary.opportunities_fired += fired["_row"].n_unique()
    # counted in the order the per-deal engine meets them (its Counters keep that order)
    counts = fired.group_by("_order", maintain_order=True).len()
    for order, n in counts.iter_rows():
        summary.by_rule[ids[order]] += n
    name, owner = pl.col("owner_name"), pl.col("owner_id")
    label = (
        pl.when(name.is_not_null() & (name != ""))
        .then(name)
        .when(owner.is_not_null() & (owner != ""))
        .then(owner)
        .otherwise(pl.lit("(no owner)"))
    )
    owners = frame.select("_row", label.alias("_owner"))
    joined = fired.join(owners, on="_row", how="left", maintain_order="left")
    counted = joined.group_by("_owner", maintain_order=True).len()
    for who, n in counted.iter_rows():
        summary.by_owner[who] += n
