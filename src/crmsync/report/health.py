"""The report's health sections: how long deals sit in each stage and how they move through
the stages, the workflows' findings and each owner's hygiene score, and coverage of quota."""

from __future__ import annotations

from collections.abc import Sequence

from crmsync.report import hygiene, stages
from crmsync.report.coverage import Coverage
from crmsync.report.document import Chart, Section, Series, Table
from crmsync.report.inputs import STAGE_LABELS, Inputs, money, owner_label


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
                "Past stays",
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
            note="Percentiles are in whole days over the completed stays in the store's deal "
            "history; a deal over the 90th percentile has been there longer than 9 in 10 past "
            "deals.",
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


def hygiene_section(inputs: Inputs) -> Section:
    """Open findings by rule and by owner, hygiene score per owner now and week by week."""
    items: list[Chart | Table] = []
    rules = hygiene.by_rule(inputs.findings)
    if rules:
        items.append(
            Chart(
                id="findings-by-rule",
                title="Open findings by rule",
                kind="bar",
                series=(
                    Series(
                        "Open findings",
                        tuple(f"{w}: {r}" for w, r, _ in rules),
                        tuple(float(n) for _, _, n in rules),
                    ),
                ),
                x_title="Workflow: rule",
                y_title="Open findings",
                note="What the workflows currently flag on open deals, by the rule that flags it.",
            )
        )
    items.append(
        Table(
            id="findings-by-rule-table",
            title="Open findings by rule",
            columns=("Workflow", "Rule", "Open findings"),
            rows=tuple(rules),
            note="Findings still open today.",
        )
    )
    owners = hygiene.by_owner(inputs.findings)
    if owners:
        items.append(
            Chart(
                id="findings-by-owner",
                title="Open findings by owner",
                kind="bar",
                series=(
                    Series(
                        "Open findings",
                        tuple(owner_label(inputs, o) for o, _, _ in owners),
                        tuple(float(n) for _, n, _ in owners),
                    ),
                ),
                x_title="Owner",
                y_title="Open findings",
                note="Whose deals the workflows currently flag, and how often.",
            )
        )
    # lowest score first: the owners whose pipelines need attention lead the chart and table
    scores = sorted(
        hygiene.scores(inputs.end), key=lambda s: (s.score, owner_label(inputs, s.owner_id))
    )
    if scores:
        items.append(
            Chart(
                id="hygiene-score",
                title="Hygiene score by owner",
                kind="bar",
                series=(
                    Series(
                        "Hygiene score",
                        tuple(owner_label(inputs, s.owner_id) for s in scores),
                        tuple(round(100.0 * s.score, 1) for s in scores),
                    ),
                ),
                x_title="Owner",
                y_title="Open deals with no finding (%)",
                note="The share of each owner's open deals that no workflow flags, lowest "
                "first: 100 % is a clean pipeline.",
            )
        )
    findings_of = {o: (n, d) for o, n, d in owners}
    items.append(
        Table(
            id="hygiene-by-owner",
            title="Hygiene by owner",
            columns=(
                "Owner",
                "Open deals",
                "Deals with no finding",
                "Hygiene score (%)",
                "Open findings",
            ),
            rows=tuple(
                (
                    owner_label(inputs, s.owner_id),
                    s.deals,
                    s.clean,
                    round(100.0 * s.score, 1),
                    findings_of.get(s.owner_id, (0, 0))[0],
                )
                for s in scores
            ),
            note=f"Open deals on {inputs.until.isoformat()}; findings as they stand today.",
        )
    )
    trend = _score_trend(inputs)
    if trend is not None:
        items.append(trend)
    intro = "What the workflows flag on open deals, and how clean each owner's pipeline is."
    return Section("hygiene", "Pipeline hygiene", intro, tuple(items))


def _score_trend(inputs: Inputs) -> Chart | None:
    """One line per owner plus one for everyone: the hygiene score at each week's end."""
    trend = hygiene.score_trend({d: w.scores for d, w in inputs.weekly.items()})
    days = sorted(inputs.weekly)
    if not trend or not days:
        return None
    series: list[Series] = []
    everyone = [inputs.weekly[d].overall for d in days]
    kept = [(d, v) for d, v in zip(days, everyone, strict=True) if v is not None]
    series.append(
        Series(
            "All owners",
            tuple(d.isoformat() for d, _ in kept),
            tuple(round(100.0 * v, 1) for _, v in kept),
        )
    )
    for owner, points in trend.items():
        series.append(
            Series(
                owner_label(inputs, owner),
                tuple(d.isoformat() for d, _ in points),
                tuple(round(100.0 * v, 1) for _, v in points),
            )
        )
    return Chart(
        id="hygiene-trend",
        title="Hygiene score, week by week",
        kind="line",
        series=tuple(series),
        x_title="Week ending",
        y_title="Open deals with no finding (%)",
        note="Each week's share of open deals that no workflow flagged, for everyone and for "
        "each owner: the line should go up.",
    )


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
