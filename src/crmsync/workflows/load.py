"""Loading workflow files and checking them against the model, the config and the CRMs.

The model catches shape mistakes; the checks here catch meaning: expressions and templates
that do not compile or name unknown fields, an unknown connection or stage, a bad cron or
timezone, a flag field the connection cannot write. Every error is one line with file:line:col.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crmsync.errors import InvalidInput
from crmsync.files import Marks, load_yaml, validate
from crmsync.model import FIELDS
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.workflows.calendar import BusinessCalendar
from crmsync.workflows.expressions import Condition, ExpressionError, compile_condition
from crmsync.workflows.schema import (
    CustomRule,
    Requirement,
    StageGateRule,
    Workflow,
)
from crmsync.workflows.templates import Template, TemplateError, compile_template

DERIVED_TYPES = {
    "days_in_stage": "float",
    "days_since_activity": "float",
    "close_date_push_count": "int",
    "close_date_slip_days": "int",
    "stage_regressions": "int",
    "next_step_age_days": "float",
    "weighted_amount": "float",
    "stage_percentile": "float",
    "stage_entered_at": "datetime",
}
EXTRA_TYPES = {
    "key": "str",
    "connection": "str",
    "native_id": "str",
    "source": "str",
    "custom": "map",
    "today": "date",
    "skipped_stages": "list",
}


def variables() -> dict[str, str]:
    """Every name a condition or template may use, with its type."""
    out = {name: spec.type for name, spec in FIELDS.items()}
    out.update(DERIVED_TYPES)
    out.update(EXTRA_TYPES)
    return out


@dataclass
class LoadedWorkflow:
    """A checked workflow with its expressions, templates and calendar compiled."""

    workflow: Workflow
    path: Path
    conditions: dict[str, Condition] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    calendar: BusinessCalendar | None = None

    @property
    def name(self) -> str:
        return self.workflow.name


def load_workflow(
    path: Path, *, connections: Mapping[str, CrmMapping] | None = None
) -> LoadedWorkflow:
    """Parse, check and compile one workflow file; `connections` enables the config checks."""
    data, marks = load_yaml(path)  # read once: the positions serve the checks below too
    workflow = validate(Workflow, data, marks)
    loaded = LoadedWorkflow(workflow, path)
    names = variables()
    template_names = {**names, "reasons": "list", "rule": "str"}  # what a firing adds

    def where(*loc: str | int) -> str:
        line, col = marks.position(loc)
        return f"{path}:{line}:{col}"

    def condition(source: str, *loc: str | int) -> None:
        if source in loaded.conditions:
            return
        try:
            loaded.conditions[source] = compile_condition(source, names)
        except ExpressionError as e:
            line, col = _inside(path, marks.position(loc), source, (e.column or 1) - 1)
            raise InvalidInput(f"{path}:{line}:{col}: {_dotted(loc)}: {e.message}") from None

    def template(source: str, *loc: str | int) -> None:
        if source in loaded.templates:
            return
        try:
            loaded.templates[source] = compile_template(source, template_names)
        except TemplateError as e:
            offset = _offset(source, e.line or 1, getattr(e, "column", None) or 1)
            line, col = _inside(path, marks.position(loc), source, offset)
            message = getattr(e, "message", None) or str(e)
            raise InvalidInput(f"{path}:{line}:{col}: {_dotted(loc)}: {message}") from None

    if workflow.scope.condition:
        condition(workflow.scope.condition, "scope", "condition")
    for i, rule in enumerate(workflow.rules):
        if isinstance(rule, CustomRule):
            condition(rule.condition, "rules", i, "condition")
            if rule.reason:
                template(rule.reason, "rules", i, "reason")
                if "reasons" in loaded.templates[rule.reason].variables:
                    raise InvalidInput(
                        f"{where('rules', i, 'reason')}: rules[{i}].reason: a reason cannot "
                        "use 'reasons' (it is one of them)"
                    )
        if isinstance(rule, StageGateRule):
            for stage, items in rule.requires.items():
                for j, item in enumerate(items):
                    if isinstance(item, Requirement):
                        condition(item.condition, "rules", i, "requires", stage, j, "condition")
        task = rule.actions.task
        if task is not None:
            template(task.subject, "rules", i, "actions", "task", "subject")
            if task.body:
                template(task.body, "rules", i, "actions", "task", "body")
    try:
        cal = workflow.calendar
        loaded.calendar = BusinessCalendar(cal.country, cal.subdivision, cal.timezone)
    except ValueError as e:
        text = str(e)
        part = next((p for p in ("timezone", "subdivision") if p in text.lower()), "country")
        if getattr(workflow.calendar, part) is None:
            part = "country"
        raise InvalidInput(f"{where('calendar', part)}: calendar.{part}: {text}") from None
    if workflow.schedule is not None:
        _check_cron(workflow, path, marks)
    if connections is not None:
        _check_against_config(workflow, path, marks, connections)
    return loaded


def _check_cron(workflow: Workflow, path: Path, marks: Marks) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from crmsync.schedule import cron_trigger

    schedule = workflow.schedule
    assert schedule is not None
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        line, col = marks.position(("schedule", "timezone"))
        raise InvalidInput(
            f"{path}:{line}:{col}: schedule.timezone: unknown timezone "
            f"'{schedule.timezone}' (use an IANA name such as America/New_York, "
            "Europe/Berlin or UTC)"
        ) from None
    try:
        cron_trigger(schedule.cron, schedule.timezone)
    except ValueError as e:
        line, col = marks.position(("schedule", "cron"))
        raise InvalidInput(
            f"{path}:{line}:{col}: schedule.cron: '{schedule.cron}' is not a valid cron schedule "
            f"(five fields: minute hour day-of-month month day-of-week, e.g. '0 7 * * 1-5'): "
            f"{_cron_detail(str(e))}"
        ) from None


def _cron_detail(text: str) -> str:
    """apscheduler's reason, with the field it concerns named when it says which value."""
    return text.replace("Error validating expression", "bad value").rstrip(".")


def _check_against_config(
    workflow: Workflow, path: Path, marks: Marks, connections: Mapping[str, CrmMapping]
) -> None:
    scoped = workflow.scope.connections
    for i, name in enumerate(scoped or []):
        if name not in connections:
            line, col = marks.position(("scope", "connections", i))
            known = ", ".join(connections) or "none configured"
            raise InvalidInput(
                f"{path}:{line}:{col}: scope.connections[{i}]: no connection "
                f"named '{name}' (known: {known})"
            )
    targets = scoped or list(connections)
    for i, rule in enumerate(workflow.rules):
        flag = rule.actions.flag
        if flag is None:
            continue
        for name in targets:
            text_fields = [k for k, v in connections[name].custom.items() if v.type == "str"]
            if flag.field not in text_fields:
                line, col = marks.position(("rules", i, "actions", "flag", "field"))
                writable = ", ".join(text_fields) or "none"
                raise InvalidInput(
                    f"{path}:{line}:{col}: rules[{i}].actions.flag.field: connection '{name}' "
                    f"cannot write flag field '{flag.field}'; its mapping's text custom fields "
                    f"are: {writable}"
                )


def load_workflows(
    paths: Sequence[Path], *, connections: Mapping[str, CrmMapping] | None = None
) -> list[LoadedWorkflow]:
    """Load every workflow file under `paths` (files or folders of *.yaml); names are unique."""
    out: list[LoadedWorkflow] = []
    seen: dict[str, Path] = {}
    for path in _files(paths):
        loaded = load_workflow(path, connections=connections)
        if loaded.name in seen:
            raise InvalidInput(
                f"{path}: workflow name '{loaded.name}' is also used by {seen[loaded.name]}"
            )
        seen[loaded.name] = path
        out.append(loaded)
    return out


def _files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        elif p.exists():
            files.append(p)
        else:
            raise InvalidInput(f"{p}: no such file or folder")
    return files


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _offset(source: str, line: int, column: int) -> int:
    """The character offset of a 1-based (line, column) inside `source`."""
    lines = source.split("\n")
    return sum(len(x) + 1 for x in lines[: max(0, line - 1)]) + max(0, column - 1)


def _inside(path: Path, start: tuple[int, int], source: str, offset: int) -> tuple[int, int]:
    """File line and column of character `offset` of a YAML string value starting at `start`.

    Handles plain and quoted values on one line and block scalars (`|`, `>`): the value's text is
    found again in the file, line by line, so the column points at the character itself.
    """
    line, col = start
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return start
    head = lines[line - 1][col - 1 :] if line - 1 < len(lines) else ""
    if head[:1] in ("|", ">"):  # block scalar: content on the following, indented lines
        n = line  # the first content line, 0-based
        while n < len(lines) and not lines[n].strip():
            n += 1
        indent = len(lines[n]) - len(lines[n].lstrip()) if n < len(lines) else 0
        remaining = offset
        while n < len(lines):
            text = lines[n][indent:]
            if remaining <= len(text):
                return n + 1, indent + remaining + 1
            remaining -= len(text) + 1
            n += 1
        return start
    if head[:1] in ("'", '"'):  # quoted: skip the quote; an escape is one character
        quote = head[0]
        pos, seen = 1, 0
        while pos < len(head) and seen < offset:
            double = quote == "'" and head[pos : pos + 2] == "''"
            escape = quote == '"' and head[pos] == "\\"
            pos += 2 if double or escape else 1
            seen += 1
        return line, col + pos
    return line, col + offset
