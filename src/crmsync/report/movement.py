"""The report's pipeline sections: the pipeline by stage, how it moved (waterfall and weekly
total), and the deals that slipped or were pushed again and again."""

from __future__ import annotations

from crmsync.report import flow, stages
from crmsync.report.document import Chart, Section, Series, Table
from crmsync.report.inputs import (
    STAGE_LABELS,
    Inputs,
    currency_label,
    deal_label,
    money,
    owner_label,
    slug,
)

STEP_LABELS = {
    "start": "Start",
    "new": "New",
    "pulled_in": "Pulled in",
    "pushed": "Pushed out",
    "up": "Amount up",
    "down": "Amount down",
    "won": "Won",
    "lost": "Lost",
    "end": "End",
}
NO_SNAPSHOTS = "No daily snapshots cover this period yet, so there is nothing to show here."
PUSHES_AT_LEAST = 3


def pipeline_section(inputs: Inputs) -> Section:
    """Open pipeline by stage on the last day: a chart per currency and one table."""
    title = "Pipeline by stage"
    if not inputs.end:
        return Section(
            "pipeline",
            title,
            NO_SNAPSHOTS
            if not inputs.has_snapshots
            else f"No open deals on {inputs.until.isoformat()}.",
        )
    figures = stages.by_stage(inputs.end)
    items: list[Chart | Table] = []
    rows: list[tuple[str | int | float | None, ...]] = []
    for currency, per in figures.items():
        labels = tuple(STAGE_LABELS[s] for s in per)
        items.append(
            Chart(
                id=f"pipeline-by-stage-{slug(currency_label(currency))}",
                title=f"Open pipeline by stage ({currency_label(currency)})",
                kind="grouped_bar",
                series=(
                    Series("Amount", labels, tuple(money(f.amount) for f in per.values())),
                    Series(
                        "Weighted amount", labels, tuple(money(f.weighted) for f in per.values())
                    ),
                ),
                x_title="Stage",
                y_title=f"Amount ({currency_label(currency)})",
                note="Each stage's open deals: their full amount, and that amount weighted by "
                "each deal's probability of closing (amount times probability).",
            )
        )
        for stage, f in per.items():
            rows.append(
                (
                    currency_label(currency),
                    STAGE_LABELS[stage],
                    f.count,
                    money(f.amount),
                    money(f.weighted),
                )
            )
    items.append(
        Table(
            id="pipeline-by-stage-table",
            title="Open pipeline by stage",
            columns=("Currency", "Stage", "Open deals", "Amount", "Weighted amount"),
            rows=tuple(rows),
            note=f"Open deals on {inputs.until.isoformat()}, whatever their close date.",
        )
    )
    items.append(
        Table(
            id="pipeline-by-connection",
            title="Open pipeline by CRM",
            columns=("CRM connection", "Currency", "Open deals", "Amount", "Weighted amount"),
            rows=tuple(
                (connection, currency_label(currency), f.count, money(f.amount), money(f.weighted))
                for (connection, currency), f in stages.by_connection(inputs.end).items()
            ),
            note="The same open pipeline, split by the CRM it comes from.",
        )
    )
    return Section(
        "pipeline", title, f"The open pipeline on {inputs.until.isoformat()}.", tuple(items)
    )


def movement_section(inputs: Inputs) -> Section:
    """The waterfall from `since` to `until` per currency, its table, and the weekly total."""
    title = "How the pipeline moved"
    window = inputs.window_end.isoformat()
    intro = (
        f"The pipeline here is every open deal closing on or before {window} (the end of the "
        f"quarter that {inputs.until.isoformat()} falls in), overdue ones included."
    )
    if not inputs.has_snapshots:
        return Section("movement", title, NO_SNAPSHOTS)
    totals = flow.flow(inputs.start, inputs.end, inputs.window_end, inputs.fate)
    items: list[Chart | Table] = []
    rows: list[tuple[str | int | float | None, ...]] = []
    for currency, t in sorted(totals.items()):
        label = currency_label(currency)
        signed = [
            money(t.amounts[s]) * (1 if s in ("start", "end") else flow.SIGN[s]) for s in flow.STEPS
        ]
        items.append(
            Chart(
                id=f"movement-waterfall-{slug(label)}",
                title=f"Pipeline movement from {inputs.since.isoformat()} to "
                f"{inputs.until.isoformat()} ({label})",
                kind="waterfall",
                series=(
                    Series("Change", tuple(STEP_LABELS[s] for s in flow.STEPS), tuple(signed)),
                ),
                x_title="Step",
                y_title=f"Amount ({label})",
                note="Each deal counts in one step. Won and lost: the deal's state today (a "
                f"deleted deal counts as lost). Pushed out: still open, now closing after "
                f"{window}. Pulled in: open at the start but closing after {window} then, "
                "closing by it now.",
            )
        )
        for s in flow.STEPS:
            rows.append((label, STEP_LABELS[s], t.deals[s], money(t.amounts[s])))
    items.append(
        Table(
            id="movement-table",
            title="Pipeline movement, step by step",
            columns=("Currency", "Step", "Deals", "Amount"),
            rows=tuple(rows),
            note="Start plus new and pulled in, minus pushed out, won and lost, plus amount up "
            "and minus amount down, equals end."
            + (
                " With a filter, a deal handed over from outside it counts as new and one "
                "handed over to outside it as pushed out."
                if inputs.filtered
                else ""
            ),
        )
    )
    items.extend(_trend_charts(inputs))
    return Section("movement", title, intro, tuple(items))


def _trend_charts(inputs: Inputs) -> list[Chart]:
    """A chart per currency (amounts are never added or compared across currencies, and a
    small currency would lie flat next to a large one): the pipeline's total at each week's
    end."""
    days = sorted(inputs.weekly)
    per_day = {d: inputs.weekly[d].totals for d in days}
    currencies = sorted({c for t in per_day.values() for c in t})
    x = tuple(d.isoformat() for d in days)
    return [
        Chart(
            id=f"pipeline-trend-{slug(currency_label(c))}",
            title=f"Pipeline total, week by week ({currency_label(c)})",
            kind="line",
            series=(
                Series(
                    "Open pipeline", x, tuple(money(per_day[d].get(c, flow.ZERO)) for d in days)
                ),
            ),
            x_title="Week ending",
            y_title=f"Amount ({currency_label(c)})",
            note=f"The open pipeline closing on or before {inputs.window_end.isoformat()}, as "
            "it stood at the end of each week.",
        )
        for c in currencies
    ]


def slipped_section(inputs: Inputs) -> Section:
    """Two tables: deals whose close date moved later, and deals pushed three times or more."""
    title = "Slipped and often-pushed deals"
    if not inputs.has_snapshots:
        return Section("slipped", title, NO_SNAPSHOTS)
    columns = (
        "Deal",
        "Owner",
        "Stage",
        "Amount",
        "Currency",
        "Was closing",
        "Now closing",
        "Times pushed",
    )
    slips = flow.slipped(inputs.start, inputs.end, inputs.window_end)
    slip_rows = tuple(
        (
            deal_label(inputs, s.key),
            owner_label(inputs, s.row.owner_id),
            s.row.stage,
            money(flow.amount_of(s.row)),
            currency_label(flow.currency_of(s.row)),
            s.old_close.isoformat(),
            s.new_close.isoformat() if s.new_close else "none",
            inputs.pushes.get(s.key, 0),
        )
        for s in slips
    )
    often = flow.pushed_often(inputs.end, inputs.pushes, PUSHES_AT_LEAST)
    often_rows = tuple(
        (
            deal_label(inputs, r.key),
            owner_label(inputs, r.owner_id),
            r.stage,
            money(flow.amount_of(r)),
            currency_label(flow.currency_of(r)),
            r.close_date.isoformat() if r.close_date else "none",
            n,
        )
        for r, n in often
    )
    often_columns = (*columns[:5], "Close date", "Times pushed")
    return Section(
        "slipped",
        title,
        "Deals whose close date keeps moving are the forecast's usual risk.",
        (
            Table(
                id="slipped-deals",
                title="Slipped deals",
                columns=columns,
                rows=slip_rows,
                note=f"Deals open on {inputs.since.isoformat()} with a close date by "
                f"{inputs.window_end.isoformat()} that are still open on "
                f"{inputs.until.isoformat()} with a later close date; the longest move first.",
            ),
            Table(
                id="pushed-often",
                title=f"Deals pushed {PUSHES_AT_LEAST} times or more",
                columns=often_columns,
                rows=often_rows,
                note=f"Open deals whose close date was moved later {PUSHES_AT_LEAST} times or "
                "more over their whole history: a known forecast risk.",
            ),
        ),
    )
