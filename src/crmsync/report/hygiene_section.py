"""The report's hygiene section: the workflows' open findings by rule and by owner, and each
owner's hygiene score now and week by week. Charts show a readable few owners (the most
findings, the lowest scores) and say so; the table lists every owner.

Scores count only from the first day the snapshots know the findings (`Inputs.findings_known`):
a day backfilled from history, or synced before any workflow ran, knows no finding and would
show a clean 100 %.
"""

from __future__ import annotations

from datetime import date

from crmsync.report import hygiene
from crmsync.report.document import Chart, Section, Series, Table
from crmsync.report.inputs import Inputs, owner_label

CHART_OWNERS = 20  # bars in a chart by owner
TREND_OWNERS = 8  # owners' lines in the week-by-week chart, besides everyone's
MIN_DEALS = 5  # open deals an owner needs for their score to be charted
SCORE_AXIS = "Open deals with no finding (%)"


def _known(inputs: Inputs, day: date) -> bool:
    """Whether the snapshot of `day` knows the workflows' findings."""
    return inputs.findings_known is not None and day >= inputs.findings_known


def _not_known_yet(inputs: Inputs) -> str:
    if inputs.findings_known is None:
        return (
            "The workflows have not yet checked the deals of every CRM connection, so no "
            "score is known yet."
        )
    return (
        f"The workflows' findings are known from {inputs.findings_known.isoformat()} on, "
        "so no score is shown before then."
    )


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
                note="The problems the workflows flag on open deals today, by the rule that "
                "flags them.",
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
    everyone = hygiene.scores(inputs.end)
    if owners:
        shown = owners[:CHART_OWNERS]
        note = "Whose open deals the workflows flag today, and how often, most first."
        if len(shown) < len(owners):
            note = (
                f"The {len(shown)} owners with the most open findings today, of the "
                f'{len(owners)} with any; the table "Hygiene by owner" below lists all '
                f"{len(everyone)} owners with open deals."
            )
        items.append(
            Chart(
                id="findings-by-owner",
                title="Open findings by owner",
                kind="bar",
                series=(
                    Series(
                        "Open findings",
                        tuple(owner_label(inputs, o) for o, _, _ in shown),
                        tuple(float(n) for _, n, _ in shown),
                    ),
                ),
                x_title="Owner",
                y_title="Open findings",
                note=note,
            )
        )
    known = _known(inputs, inputs.until)
    if everyone and known:
        items.append(_score_chart(inputs, everyone))
    # lowest score first: the owners whose pipelines need attention lead the table
    in_order = sorted(everyone, key=lambda s: (s.score, owner_label(inputs, s.owner_id)))
    findings_of = {o: n for o, n, _ in owners}
    table_note = (
        f"Every owner with open deals on {inputs.until.isoformat()}, lowest score first; the "
        "open findings are today's."
    )
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
                    s.clean if known else None,
                    round(100.0 * s.score, 1) if known else None,
                    findings_of.get(s.owner_id, 0),
                )
                for s in in_order
            ),
            note=table_note if known else f"{table_note} {_not_known_yet(inputs)}",
        )
    )
    trend = _score_trend(inputs)
    if trend is not None:
        items.append(trend)
    intro = (
        "What the workflows flag on open deals, and how clean each owner's pipeline is: the "
        "hygiene score is the share of an owner's open deals with no finding."
    )
    if not known or trend is None:
        intro = f"{intro} {_not_known_yet(inputs)}"
    return Section("hygiene", "Pipeline hygiene", intro, tuple(items))


def _score_chart(inputs: Inputs, everyone: list[hygiene.Score]) -> Chart:
    """The lowest hygiene scores now, among owners with enough open deals to compare."""
    lowest, eligible = hygiene.lowest_scores(everyone, at_least=MIN_DEALS, n=CHART_OWNERS)
    clean = "100 % means none of an owner's open deals is flagged."
    if len(lowest) < len(everyone):
        few = "" if eligible == len(everyone) else f" with at least {MIN_DEALS} open deals"
        why = "" if not few else " (with fewer, one finding swings the score)"
        note = f"The {len(lowest)} lowest scores among the {eligible} owners{few}{why}"
        pool = [s for s in everyone if s.deals >= MIN_DEALS] or everyone
        floor = lowest[-1].score
        tied = sum(1 for s in pool if s.score == floor)
        if lowest[0].score == floor and tied > len(lowest):
            note += (
                f"; {tied} of them score {round(100.0 * floor, 1):g} %, those with the most "
                "open deals are shown"
            )
        note += f". The table below lists all {len(everyone)} owners. {clean}"
    else:
        note = f"The share of each owner's open deals that no workflow flags, lowest first. {clean}"
    return Chart(
        id="hygiene-score",
        title="Hygiene score by owner",
        kind="bar",
        series=(
            Series(
                "Hygiene score",
                tuple(owner_label(inputs, s.owner_id) for s in lowest),
                tuple(round(100.0 * s.score, 1) for s in lowest),
            ),
        ),
        x_title="Owner",
        y_title=SCORE_AXIS,
        note=note,
    )


def _score_trend(inputs: Inputs) -> Chart | None:
    """A line for everyone and for the few owners with the lowest score in the latest week:
    the hygiene score at each week's end, from the first week whose findings are known."""
    days = [d for d in sorted(inputs.weekly) if _known(inputs, d)]
    kept = [(d, v) for d in days if (v := inputs.weekly[d].overall) is not None]
    if not kept:
        return None
    last = kept[-1][0]
    lowest, eligible = hygiene.lowest_scores(
        inputs.weekly[last].scores, at_least=MIN_DEALS, n=TREND_OWNERS
    )
    trend = hygiene.score_trend({d: inputs.weekly[d].scores for d in days})
    series = [
        Series(
            "All owners",
            tuple(d.isoformat() for d, _ in kept),
            tuple(round(100.0 * v, 1) for _, v in kept),
        )
    ]
    for s in lowest:
        points = trend[s.owner_id]
        series.append(
            Series(
                owner_label(inputs, s.owner_id),
                tuple(d.isoformat() for d, _ in points),
                tuple(round(100.0 * v, 1) for _, v in points),
            )
        )
    few = (
        "" if eligible == len(inputs.weekly[last].scores) else f" (at least {MIN_DEALS} open deals)"
    )
    known = inputs.findings_known or days[0]
    return Chart(
        id="hygiene-trend",
        title="Hygiene score, week by week",
        kind="line",
        series=tuple(series),
        x_title="Week ending",
        y_title=SCORE_AXIS,
        note=f"Each week's share of open deals with no finding, for all owners and for the "
        f"{len(lowest)} owners with the lowest score on {last.isoformat()}{few}. The "
        f"workflows' findings are known from {known.isoformat()} on: earlier weeks have no "
        "score, as nothing had been checked yet.",
    )
