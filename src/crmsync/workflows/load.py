"""Loading workflow files and checking them against the model, the config and the CRMs.

`parse_model` catches shape mistakes; the checks here catch meaning: expressions and templates
that do not compile or name unknown fields, an unknown connection or stage, a bad cron or
timezone, a flag field the connection cannot write. Every error is one line with file:line:col.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crmsync.connectors.mapping import Mapping as CrmMapping
from crmsync.errors import InvalidInput
from crmsync.files import Marks, load_yaml, parse_model
from crmsync.model import FIELDS
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
    workflow = parse_model(path, Workflow)
    _, marks = load_yaml(path)
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
            raise InvalidInput(
                f"{_at(marks, path, loc, e.column)}: {_dotted(loc)}: {e.message}"
            ) from None

    def template(source: str, *loc: str | int) -> None:
        if source in loaded.templates:
            return
        try:
            loaded.templates[source] = compile_template(source, template_names)
        except TemplateError as e:
            raise InvalidInput(f"{where(*loc)}: {_dotted(loc)}: {e}") from None

    if workflow.scope.condition:
        condition(workflow.scope.condition, "scope", "condition")
    for i, rule in enumerate(workflow.rules):
        if isinstance(rule, CustomRule):
            condition(rule.condition, "rules", i, "condition")
            if rule.reason:
                template(rule.reason, "rules", i, "reason")
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
        raise InvalidInput(f"{where('calendar')}: calendar: {e}") from None
    if workflow.schedule is not None:
        _check_cron(workflow, path, marks)
    if connections is not None:
        _check_against_config(workflow, path, marks, connections)
    return loaded


def _check_cron(workflow: Workflow, path: Path, marks: Marks) -> None:
    from apscheduler.triggers.cron import CronTrigger

    assert workflow.schedule is not None
    try:
        CronTrigger.from_crontab(workflow.schedule.cron, timezone=workflow.schedule.timezone)
    except Exception as e:  # apscheduler raises ValueError; zoneinfo its own KeyError subclass
        loc: tuple[str, ...] = (
            ("schedule", "timezone")
            if "zone" in str(e).lower() or "zone" in type(e).__name__.lower()
            else ("schedule", "cron")
        )
        line, col = marks.position(loc)
        message = (
            str(e).strip("'\"")
            if "zone" not in loc[-1]
            else f"unknown timezone '{workflow.schedule.timezone}' (use a name like Europe/Paris)"
        )
        raise InvalidInput(f"{path}:{line}:{col}: {_dotted(loc)}: {message}") from None


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
            if flag.field not in connections[name].custom:
                line, col = marks.position(("rules", i, "actions", "flag", "field"))
                writable = ", ".join(connections[name].custom) or "none"
                raise InvalidInput(
                    f"{path}:{line}:{col}: rules[{i}].actions.flag.field: connection '{name}' "
                    f"cannot write flag field '{flag.field}'; its mapping's custom fields are: "
                    f"{writable}"
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


def _at(marks: Marks, path: Path, loc: Sequence[str | int], column: int | None) -> str:
    """file:line:col of a position inside an expression value (plain or quoted on one line)."""
    line, col = marks.position(tuple(loc))
    if column is not None:
        col += column - 1 + (1 if _quoted(path, line, col) else 0)
    return f"{path}:{line}:{col}"


def _quoted(path: Path, line: int, col: int) -> bool:
    try:
        text = path.read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, IndexError):
        return False
    return col - 1 < len(text) and text[col - 1] in "'\""


__all__ = ["LoadedWorkflow", "load_workflow", "load_workflows", "variables"]
