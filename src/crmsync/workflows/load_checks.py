"""The checks of a workflow file beyond its shape: the schedule, the connections and flag fields
of the config, and the text a condition compares with a stage (or another field of few values).

Each check returns its problems as `(position, line)` pairs, the line being
`<file>:<line>:<col>: <field>: <message>`, so that `load` can report every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from crmsync.files import Marks, Position
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.model.opportunity import CANONICAL_STAGES
from crmsync.workflows.cel_literals import compared_literals
from crmsync.workflows.expressions import suggest
from crmsync.workflows.schema import Workflow

Found = tuple[Position, str]

# The values of the CRMs' standard forecast category fields, by the field a mapping reads.
FORECAST_CATEGORIES = {
    "ForecastCategoryName": ("Pipeline", "Best Case", "Commit", "Closed", "Omitted"),
    "hs_forecast_category": ("PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMIT"),
}
ENUM_FIELDS = frozenset(("stage", "stage_canonical", "forecast_category"))


def dotted(loc: Sequence[str | int]) -> str:
    """`rules[0].requires.proposal[1].condition` for a location in the file."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_cron(workflow: Workflow, path: Path, marks: Marks) -> list[Found]:
    """The schedule's timezone and cron expression."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from crmsync.schedule import cron_trigger

    schedule = workflow.schedule
    if schedule is None:
        return []
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        at = marks.position(("schedule", "timezone"))
        return [
            (
                at,
                f"{path}:{at[0]}:{at[1]}: schedule.timezone: unknown timezone "
                f"'{schedule.timezone}' (use an IANA name such as America/New_York, "
                "Europe/Berlin or UTC)",
            )
        ]
    try:
        cron_trigger(schedule.cron, schedule.timezone)
    except ValueError as e:
        at = marks.position(("schedule", "cron"))
        return [
            (
                at,
                f"{path}:{at[0]}:{at[1]}: schedule.cron: '{schedule.cron}' is not a valid cron "
                "schedule (five fields: minute hour day-of-month month day-of-week, e.g. "
                f"'0 7 * * 1-5'): {cron_detail(str(e))}",
            )
        ]
    return []


def cron_detail(text: str) -> str:
    """The scheduler's reason, "bad value" for its "Error validating expression"."""
    return text.replace("Error validating expression", "bad value").rstrip(".")


def check_config(
    workflow: Workflow, path: Path, marks: Marks, connections: Mapping[str, CrmMapping]
) -> list[Found]:
    """The connections named in the scope exist; the flag fields are writable text fields."""
    found: list[Found] = []
    scoped = workflow.scope.connections
    for i, name in enumerate(scoped or []):
        if name not in connections:
            at = marks.position(("scope", "connections", i))
            known = ", ".join(connections) or "none configured"
            found.append(
                (
                    at,
                    f"{path}:{at[0]}:{at[1]}: scope.connections[{i}]: no connection "
                    f"named '{name}' (known: {known})",
                )
            )
    for i, rule in enumerate(workflow.rules):
        flag = rule.actions.flag
        if flag is None:
            continue
        for name in targets(workflow, connections):
            text_fields = [k for k, v in connections[name].custom.items() if v.type == "str"]
            if flag.field not in text_fields:
                at = marks.position(("rules", i, "actions", "flag", "field"))
                writable = ", ".join(text_fields) or "none"
                found.append(
                    (
                        at,
                        f"{path}:{at[0]}:{at[1]}: rules[{i}].actions.flag.field: connection "
                        f"'{name}' cannot write flag field '{flag.field}'; its mapping's text "
                        f"custom fields are: {writable}",
                    )
                )
                break
    return found


def targets(workflow: Workflow, connections: Mapping[str, CrmMapping]) -> list[str]:
    """The configured connections the workflow runs on."""
    scoped = workflow.scope.connections
    return [n for n in scoped if n in connections] if scoped else list(connections)


def allowed_values(
    field: str, mappings: Mapping[str, CrmMapping] | None
) -> tuple[tuple[str, ...], str] | None:
    """The values `field` takes on the given connections and where they come from, or None
    when they are not known (no config, or a connection whose values only the CRM knows)."""
    if field == "stage_canonical":
        return CANONICAL_STAGES, "the canonical stages"
    if not mappings:
        return None
    values: list[str] = []
    for mapping in mappings.values():
        source = mapping.fields.get(field)
        if source is None:
            return None
        if field == "stage" and not source.field.startswith("@"):  # HubSpot's labels: CRM only
            values += mapping.stages
        elif field == "forecast_category" and source.field in FORECAST_CATEGORIES:
            values += FORECAST_CATEGORIES[source.field]
        else:
            return None
    names = " and ".join(mappings)
    what = "stages" if field == "stage" else "forecast categories"
    mapped = "'s mapping lists" if len(mappings) == 1 else "'s mappings list"
    return tuple(dict.fromkeys(values)), f"the {what} {names}{mapped}"


def compared_message(field: str, value: str, allowed: Sequence[str], origin: str) -> str:
    """The message for `value`, compared with `field`, which never holds it."""
    hints = [suggest(value, allowed).strip().removeprefix("(").removesuffix(")")]
    if field == "stage" and value.lower() in CANONICAL_STAGES:
        hints.append(f"for the canonical stage compare stage_canonical with '{value.lower()}'")
    hint = "; ".join(h for h in hints if h)
    shown = ", ".join(allowed) if len(allowed) <= 16 else ", ".join(allowed[:16]) + ", ..."
    return (
        f"{field} is compared with '{value}', which is not one of {origin}: {shown}"
        f"{f' ({hint})' if hint else ''}"
    )


def check_literals(source: str, mappings: Mapping[str, CrmMapping] | None) -> list[tuple[int, str]]:
    """(offset in `source`, message) for each text a condition compares with a field that never
    holds it."""
    out: list[tuple[int, str]] = []
    for compared in compared_literals(source, ENUM_FIELDS):
        known = allowed_values(compared.field, mappings)
        if known is None or compared.value in known[0]:
            continue
        message = compared_message(compared.field, compared.value, known[0], known[1])
        out.append((compared.offset, message))
    return out
