"""The report's figures put together: what the app read from the store (`Inputs`), turned into
the sections of a ReportDoc by the pure functions of flow, stages, hygiene and coverage.

Nothing here reads the store or draws: the app gathers Inputs, a renderer draws the document.
"""

from __future__ import annotations

from crmsync.report import health, hygiene_section, movement
from crmsync.report.document import ReportDoc, Section
from crmsync.report.inputs import Inputs

TITLE = "Pipeline review"


def assemble(inputs: Inputs) -> ReportDoc:
    """The whole report from its inputs; sections without data say so in their intro."""
    sections: list[Section] = [
        movement.pipeline_section(inputs),
        movement.movement_section(inputs),
        movement.slipped_section(inputs),
        health.aging_section(inputs),
        hygiene_section.hygiene_section(inputs),
    ]
    notes = list(inputs.notes)
    if not inputs.has_snapshots:
        notes.insert(
            0,
            "No daily snapshots exist for this period yet, so the pipeline, movement and "
            "slipped-deal sections are empty: they fill in once crmsync has synced.",
        )
    if inputs.coverage is None:
        notes.append("Coverage is left out: no quota file was given.")
    else:
        sections.append(health.coverage_section(inputs, inputs.coverage))
    return ReportDoc(
        title=TITLE,
        generated_at=inputs.generated_at,
        since=inputs.since,
        until=inputs.until,
        scope=inputs.scope,
        sections=tuple(sections),
        notes=tuple(notes),
    )
