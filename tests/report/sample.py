"""A hand-made report document with every chart kind and a table, for the renderer tests.

Its names carry the text a hostile CRM record could hold (markup, a script end tag, quotes,
a formula), so every form is tested against it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from crmsync.report.document import Chart, ReportDoc, Section, Series, Table

HOSTILE = "</script><b>x</b> & \"quoted\" 'single' <img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example","click")'

STAGES = ("Qualified", "Discovery", "Proposal", "Negotiation")
WEEKS = ("2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28", "2026-10-05")
FLOW = ("Start", "New", "Pulled in", "Pushed out", "Amount up", "Amount down", "Won", "Lost", "End")
FLOW_VALUES = (500_000.0, 120_000.0, 30_000.0, -80_000.0, 15_000.5, -10_000.5, -60_000.0, -25_000.0)


def sample_doc() -> ReportDoc:
    """A report with one chart of each kind, a table of deals and an empty table."""
    end = sum(FLOW_VALUES)
    items_pipeline = (
        Chart(
            id="pipeline-by-stage",
            title="Open pipeline by stage",
            kind="bar",
            series=(Series("Amount", STAGES, (400_000.0, 250_000.0, 180_000.0, 90_000.0)),),
            x_title="Stage",
            y_title="Amount (USD)",
            note="What is open today, by stage.",
        ),
        Chart(
            id="weighted-by-stage",
            title="Amount and weighted amount by stage",
            kind="grouped_bar",
            series=(
                Series("Amount", STAGES, (400_000.0, 250_000.0, 180_000.0, 90_000.0)),
                Series("Weighted", STAGES, (40_000.0, 50_000.0, 108_000.0, 72_000.0)),
            ),
            x_title="Stage",
            y_title="USD",
            note="Weighted amount is the amount times the stage's probability.",
        ),
        Chart(
            id="flow",
            title="How the pipeline moved",
            kind="waterfall",
            series=(Series("Pipeline", FLOW, (*FLOW_VALUES, end)),),
            y_title="Amount (USD)",
            note="From the start of the period to its end.",
        ),
    )
    items_hygiene = (
        Chart(
            id="findings-by-owner",
            title="Open findings by owner",
            kind="stacked_bar",
            series=(
                Series("No next step", ("Ann Lee", HOSTILE, "2024"), (3.0, 5.0, 1.0)),
                Series("Past close date", ("Ann Lee", HOSTILE), (2.0, 4.0)),
            ),
            x_title="Owner",
            y_title="Open findings",
        ),
        Chart(
            id="hygiene-trend",
            title="Hygiene score by week",
            kind="line",
            series=(
                Series("Ann Lee", WEEKS, (0.8, 0.82, 0.85, 0.84, 0.9)),
                Series(HOSTILE, WEEKS[1:], (0.5, 0.55, 0.6, 0.58)),
            ),
            x_title="Week",
            y_title="Share of deals with no finding",
            note=f"Owner {HOSTILE} improved.",
        ),
        Table(
            id="slipped",
            title="Slipped deals",
            columns=("Deal", "Owner", "Amount", "Times pushed", "Close date"),
            rows=(
                (HOSTILE, "Ann Lee", 120_000.0, 3, "2026-11-30"),
                (FORMULA, "Bo Chan", 9_500.25, 1, "2026-10-15"),
                ("Acme renewal", "Ann Lee", 45_000.0, 10, None),
                ("Zeta expansion", HOSTILE, -1_000.0, 2, "2026-12-01"),
            ),
            note="Close date moved out of the period.",
        ),
        Table(id="none-here", title="Deals pushed three times or more", columns=("Deal",), rows=()),
    )
    return ReportDoc(
        title="Pipeline review",
        generated_at=datetime(2026, 10, 9, 7, 30, tzinfo=UTC),
        since=date(2026, 7, 10),
        until=date(2026, 10, 9),
        scope=("Connections: sf, hs", f"Owner: {HOSTILE}", "One currency: USD"),
        sections=(
            Section("pipeline", "Pipeline", "Where the open pipeline stands.", items_pipeline),
            Section("hygiene", "Hygiene", f"Findings by owner {HOSTILE}.", items_hygiene),
        ),
        notes=("Coverage is left out: no quota file was given.",),
    )


def points(chart: Chart) -> int:
    """How many bars or markers the chart must draw: one per value of each series."""
    return sum(len(s.y) for s in chart.series)
