"""The report's health sections: how long deals sit in each stage and how they move through
the stages, and coverage of quota (hygiene is in `hygiene_section`)."""

from __future__ import annotations

from collections.abc import Sequence

from crmsync.report import stages
from crmsync.report.coverage import Coverage
from crmsync.report.document import Chart, Section, Series, Table
from crmsync.report.inputs import STAGE_LABELS, Inputs, money


def _days(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def aging_section(inputs: Inputs) -> Section:
    """Days in stage now against each stage's usual stays, conversion rates and velocity."""
    stats = stages.stay_stats(inputs.stays)
    ages = stages.aging(inputs.in_stage, stats)
    conv = stages.conversion(inputs.paths)
    labels = tuple(STAGE_LABELS[s] for s in stages.OPEN_STAGES)
    items: list[Chart | Table] = []

    def pct(p: int) -> tuple[float, ...]:
        return tuple(float(stats[s].percentiles[p] or 0.0) for s in stages.OPEN_STAGES)

    if any(st.stays for st in stats.values()) or any(a.deals for a in ages):
        items.append(
            Chart(
                id="aging-days-in-stage",
                title="Days in stage now, against the usual time in each stage",
                kind="grouped_bar",
                series=(
                    Series(
                        "Open deals now (median)",
                        labels,
                        tuple(round(a.median_days or 0.0, 1) for a in ages),
                    ),
                    Series("Usual (median)", labels, pct(50)),
                    Series("Long (75th percentile)", labels, pct(75)),
                    Series("Very long (90th percentile)", labels, pct(90)),
                ),
                x_title="Stage",
                y_title="Days",
                note="The first bar is how long today's open deals have been in the stage; the "
                "others how long past deals stayed there before moving on.",
            )
        )
    items.append(
        Table(
            id="aging-table",
            title="Days in stage",
            columns=(
                "Stage",
                "Open deals",
                "Median days in stage now",
                "Deals over the 90th percentile",
                "Past deals that left the stage",
                "Median stay",
                "75th percentile",
                "90th percentile",
            ),
            rows=tuple(
                (
                    STAGE_LABELS[a.stage],
                    a.deals,
                    _days(a.median_days),
                    a.over_p90,
                    stats[a.stage].stays,
                    stats[a.stage].percentiles[50],
                    stats[a.stage].percentiles[75],
                    stats[a.stage].percentiles[90],
                )
                for a in ages
            ),
            note="The usual times come from how long past deals stayed in each stage before "
            "moving on (whole days, from the deals' history); a deal over the 90th percentile "
            "has been in its stage longer than 9 in 10 past deals were.",
        )
    )
    decided = [c for c in conv if c.rate is not None]
    if decided:
        items.append(
            Chart(
                id="stage-conversion",
                title="Stage conversion rate",
                kind="bar",
                series=(
                    Series(
                        "Moved on",
                        tuple(STAGE_LABELS[c.stage] for c in decided),
                        tuple(round(100.0 * (c.rate or 0.0), 1) for c in decided),
                    ),
                ),
                x_title="Stage",
                y_title="Share that moved on (%)",
                note="Of the deals that entered a stage and have since left it or closed, the "
                "share that reached a later stage or was won.",
            )
        )
    with_stays = [s for s in stages.OPEN_STAGES if stats[s].mean_days is not None]
    if with_stays:
        items.append(
            Chart(
                id="stage-velocity",
                title="Average days per stage",
                kind="bar",
                series=(
                    Series(
                        "Average days",
                        tuple(STAGE_LABELS[s] for s in with_stays),
                        tuple(round(stats[s].mean_days or 0.0, 1) for s in with_stays),
                    ),
                ),
                x_title="Stage",
                y_title="Days",
                note="How long deals stayed in each stage on average before moving on: where "
                "the sales cycle spends its time.",
            )
        )
    items.append(
        Table(
            id="stage-conversion-table",
            title="Stage conversion and velocity",
            columns=(
                "Stage",
                "Deals that entered",
                "Left or closed",
                "Moved on",
                "Conversion (%)",
                "Average days",
            ),
            rows=tuple(
                (
                    STAGE_LABELS[c.stage],
                    c.entered,
                    c.decided,
                    c.moved_on,
                    None if c.rate is None else round(100.0 * c.rate, 1),
                    _days(stats[c.stage].mean_days),
                )
                for c in conv
            ),
            note="Deals still sitting in a stage are not counted in its conversion yet.",
        )
    )
    intro = (
        "How long deals stay in each stage and how many move on, from the deals' history; "
        f"days in stage are counted up to {inputs.generated_at.date().isoformat()}."
    )
    if not inputs.stays and not inputs.in_stage:
        intro = "No stage history and no open deals yet, so there is nothing to measure here."
    return Section("aging", "Aging, conversion and velocity", intro, tuple(items))


def coverage_section(inputs: Inputs, found: Sequence[Coverage]) -> Section:
    """Pipeline coverage of each quota line: a bar each, and a table."""
    labels: list[str] = []
    for c in found:
        label = f"{c.quota.who} {c.quota.start.isoformat()} to {c.quota.end.isoformat()}"
        if label in labels:  # the same owner and period twice: the file's line tells them apart
            label = f"{label} (line {c.quota.line})"
        labels.append(label)
    items: list[Chart | Table] = []
    if found:
        items.append(
            Chart(
                id="coverage",
                title="Pipeline coverage of quota",
                kind="bar",
                series=(
                    Series("Coverage", tuple(labels), tuple(round(c.ratio, 2) for c in found)),
                ),
                x_title="Owner or team, period",
                y_title="Open pipeline / quota",
                note="Open pipeline closing in each quota period divided by the quota; three "
                "to four times is the usual target.",
            )
        )
    items.append(
        Table(
            id="coverage-table",
            title="Coverage of quota",
            columns=(
                "Owner or team",
                "Period start",
                "Period end",
                "Quota",
                "Currency",
                "Open deals",
                "Open pipeline",
                "Coverage",
            ),
            rows=tuple(
                (
                    c.quota.who,
                    c.quota.start.isoformat(),
                    c.quota.end.isoformat(),
                    money(c.quota.amount),
                    c.quota.currency,
                    c.deals,
                    money(c.pipeline),
                    round(c.ratio, 2),
                )
                for c in found
            ),
            note=f"Open deals on {inputs.until.isoformat()} in the quota's currency whose close "
            "date falls in the quota's period.",
        )
    )
    return Section("coverage", "Coverage", "The open pipeline against each quota.", tuple(items))
