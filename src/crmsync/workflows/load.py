"""Loading workflow files and checking them against the model, the config and the CRMs.

The model catches shape mistakes; the checks here catch meaning: expressions and templates
that do not compile or name unknown fields, an unknown connection or stage, a bad cron or
timezone, a flag field the connection cannot write. Every error is one line with file:line:col.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crmsync.errors import InvalidInput
from crmsync.files import Marks, Position, Problems, load_yaml, validate
from crmsync.model import FIELDS
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.workflows.calendar import BusinessCalendar
from crmsync.workflows.expressions import Condition, ExpressionError, compile_condition
from crmsync.workflows.load_checks import (
    Found,
    check_config,
    check_cron,
    check_literals,
    dotted,
    targets,
)
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
    """Parse, check and compile one workflow file; `connections` enables the config checks.

    Raises `Problems` with every problem found, in file order, each one line with
    file:line:col: the shape mistakes and the mistakes in its conditions and templates; when
    the shape is right, also the calendar, the schedule and the checks against the config.
    """
    data, marks = load_yaml(path)  # read once: the positions serve the checks below too
    try:
        workflow = validate(Workflow, data, marks)
    except Problems as e:
        texts = _Texts(path, marks, None)
        for kind, source, loc in _raw_texts(data):
            texts.check(kind, source, loc)
        found = [(_position(line, path), line) for line in e.lines] + texts.found
        raise Problems(_ordered(found)) from None
    scoped = None
    if connections is not None:
        scoped = {n: connections[n] for n in targets(workflow, connections)}
    texts = _Texts(path, marks, scoped)
    for kind, source, loc in _texts(workflow):
        texts.check(kind, source, loc)
    loaded = LoadedWorkflow(workflow, path, texts.conditions, texts.templates)
    found = texts.found
    try:
        cal = workflow.calendar
        loaded.calendar = BusinessCalendar(cal.country, cal.subdivision, cal.timezone)
    except ValueError as e:
        text = str(e)
        part = next((p for p in ("timezone", "subdivision") if p in text.lower()), "country")
        if getattr(workflow.calendar, part) is None:
            part = "country"
        texts.report(("calendar", part), marks.position(("calendar", part)), text)
    found += check_cron(workflow, path, marks)
    if connections is not None:
        found += check_config(workflow, path, marks, connections)
    if found:
        raise Problems(_ordered(found))
    return loaded


Loc = tuple[str | int, ...]


def _texts(workflow: Workflow) -> Iterator[tuple[str, str, Loc]]:
    """Each condition and template of a workflow: (kind, source, location); kind is
    "condition", "template" or "reason" (a template that may not use `reasons`)."""
    if workflow.scope.condition:
        yield "condition", workflow.scope.condition, ("scope", "condition")
    for i, rule in enumerate(workflow.rules):
        if isinstance(rule, CustomRule):
            yield "condition", rule.condition, ("rules", i, "condition")
            if rule.reason:
                yield "reason", rule.reason, ("rules", i, "reason")
        if isinstance(rule, StageGateRule):
            for stage, items in rule.requires.items():
                for j, item in enumerate(items):
                    if isinstance(item, Requirement):
                        loc = ("rules", i, "requires", stage, j, "condition")
                        yield "condition", item.condition, loc
        task = rule.actions.task
        if task is not None:
            yield "template", task.subject, ("rules", i, "actions", "task", "subject")
            if task.body:
                yield "template", task.body, ("rules", i, "actions", "task", "body")


def _raw_texts(data: object) -> Iterator[tuple[str, str, Loc]]:
    """As `_texts`, read from a file whose shape is wrong: every text found where a condition
    or template belongs, so that its mistakes are reported with the shape's."""

    def get(node: object, *keys: str | int) -> object:
        for key in keys:
            here = isinstance(node, dict) and key in node
            here |= isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
            if not here:
                return None
            node = node[key]  # type: ignore[index]
        return node

    def text(kind: str, *loc: str | int) -> Iterator[tuple[str, str, Loc]]:
        value = get(data, *loc)
        if isinstance(value, str) and value.strip():
            yield kind, value, loc

    yield from text("condition", "scope", "condition")
    rules = get(data, "rules")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        if rule.get("kind") == "custom":
            yield from text("condition", "rules", i, "condition")
            yield from text("reason", "rules", i, "reason")
        requires = rule.get("requires") if rule.get("kind") == "stage_gate" else None
        for stage, items in requires.items() if isinstance(requires, dict) else []:
            for j, _ in enumerate(items if isinstance(items, list) else []):
                yield from text("condition", "rules", i, "requires", stage, j, "condition")
        yield from text("template", "rules", i, "actions", "task", "subject")
        yield from text("template", "rules", i, "actions", "task", "body")


class _Texts:
    """Compiles a file's conditions and templates, keeping every problem found."""

    def __init__(self, path: Path, marks: Marks, scoped: Mapping[str, CrmMapping] | None) -> None:
        self.path, self.marks, self.scoped = path, marks, scoped
        self.names = variables()
        self.template_names = {**self.names, "reasons": "list", "rule": "str"}  # a firing's
        self.conditions: dict[str, Condition] = {}
        self.templates: dict[str, Template] = {}
        self.found: list[Found] = []

    def report(self, loc: Sequence[str | int], at: Position, message: str) -> None:
        self.found.append((at, f"{self.path}:{at[0]}:{at[1]}: {dotted(loc)}: {message}"))

    def check(self, kind: str, source: str, loc: Loc) -> None:
        start = self.marks.position(loc)
        if kind == "condition":
            if source in self.conditions:
                return
            try:
                self.conditions[source] = compile_condition(source, self.names)
            except ExpressionError as e:
                at = _inside(self.path, start, source, (e.column or 1) - 1)
                self.report(loc, at, e.message)
                return
            for offset, message in check_literals(source, self.scoped):
                self.report(loc, _inside(self.path, start, source, offset), message)
            return
        if source not in self.templates:
            try:
                self.templates[source] = compile_template(source, self.template_names)
            except TemplateError as e:
                offset = _offset(source, e.line or 1, getattr(e, "column", None) or 1)
                at = _inside(self.path, start, source, offset)
                self.report(loc, at, getattr(e, "message", None) or str(e))
                return
        if kind == "reason" and "reasons" in self.templates[source].variables:
            self.report(loc, start, "a reason cannot use 'reasons' (it is one of them)")


def _position(line: str, path: Path) -> Position:
    """The line and column a problem line names after `path`, for sorting."""
    head = line[len(str(path)) + 1 :].split(":", 2)
    try:
        return int(head[0]), int(head[1])
    except (IndexError, ValueError):
        return (0, 0)


def _ordered(found: list[Found]) -> list[str]:
    """The problem lines in file order, each once."""
    return list(dict.fromkeys(line for _, line in sorted(found, key=lambda f: f[0])))


def load_workflows(
    paths: Sequence[Path], *, connections: Mapping[str, CrmMapping] | None = None
) -> list[LoadedWorkflow]:
    """Load every workflow file under `paths` (files or folders of *.yaml); names are unique.

    Raises `Problems` with every problem of every file."""
    loaded, problems = check_workflows(paths, connections=connections)
    if problems:
        raise Problems(problems)
    return loaded


def check_workflows(
    paths: Sequence[Path], *, connections: Mapping[str, CrmMapping] | None = None
) -> tuple[list[LoadedWorkflow], list[str]]:
    """The workflow files under `paths` that load, and every problem of the others (one line
    each, file by file)."""
    out: list[LoadedWorkflow] = []
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for path in _files(paths):
        try:
            loaded = load_workflow(path, connections=connections)
        except InvalidInput as e:
            problems += Problems.lines_of(e)
            continue
        if loaded.name in seen:
            problems.append(
                f"{path}: workflow name '{loaded.name}' is also used by {seen[loaded.name]}"
            )
            continue
        seen[loaded.name] = path
        out.append(loaded)
    return out, problems


def _files(paths: Iterable[Path]) -> list[Path]:
    """The workflow files under `paths`, each written without `..` or `.` (as messages show it)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        elif p.exists():
            files.append(p)
        else:
            raise InvalidInput(f"{os.path.normpath(p)}: no such file or folder")
    return [Path(os.path.normpath(f)) for f in files]


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
