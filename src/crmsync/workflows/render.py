"""What a firing would do: the flag and task a rule asks for, its texts rendered from the deal,
prepared once per rule.

A task's texts are plain text, cleaned of what a CRM or a terminal would misread: no control
characters (a subject is one line; a body keeps its line breaks and tabs), no bidirectional
overrides, and at most 255 / 32,000 characters, longer text ending with an ellipsis
(`crmsync.model.text`). A text that cannot be rendered raises `TemplateError` from `build`.

A custom rule's `reason:` is rendered here too (`reason_renderer`), with the deal's values, as
one line: reps read reasons in tasks and digests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from crmsync.model import Opportunity
from crmsync.model.text import BODY_LIMIT, SUBJECT_LIMIT, plain_text, reflow
from crmsync.workflows.context import values_reader
from crmsync.workflows.derived import Derived
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.rules import rule_title
from crmsync.workflows.schema import CustomRule, Rule

__all__ = ["REASON_LIMIT", "ActionPlan", "PlannedAction", "reason_renderer"]

REASON_LIMIT = 500  # characters of one rendered reason


@dataclass
class PlannedAction:
    """One write the rule asks for (the write-back step carries it out)."""

    kind: str  # "flag" | "task"
    field: str | None = None
    value: str | None = None
    subject: str | None = None
    body: str | None = None
    due_date: date | None = None
    priority: str | None = None
    remind_every_days: int | None = None
    remind_mode: str | None = None


class ActionPlan:
    """What a firing of one rule would do, prepared once: `build` makes the PlannedActions."""

    __slots__ = ("_body", "_due", "_flag", "_loaded", "_rule", "_subject", "_task", "title")

    def __init__(self, loaded: LoadedWorkflow, rule: Rule) -> None:
        self._loaded = loaded
        self._rule = rule
        self.title = rule_title(rule)
        spec = rule.actions
        self._flag = spec.flag
        self._task = spec.task
        self._subject = self._body = None
        if spec.task is not None:
            self._subject = self._renderer(spec.task.subject, SUBJECT_LIMIT, multiline=False)
            if spec.task.body:
                self._body = self._renderer(spec.task.body, BODY_LIMIT, multiline=True)
        self._due: date | None = None

    @property
    def renders_text(self) -> bool:
        """Whether `build` renders a task text (else it is a flag's, cheap to make at once)."""
        return self._subject is not None

    def _renderer(self, source: str, limit: int, *, multiline: bool) -> _Render:
        template = self._loaded.templates[source]  # with just the variables it uses
        names = [n for n in template.variables if n not in ("reasons", "rule")]
        extra = [n for n in template.variables if n in ("reasons", "rule")]
        read = values_reader(names)
        title = self.title

        def render(opp: Opportunity, derived: Derived, today: date, reasons: list[str]) -> str:
            values = read(opp, derived, today)
            for n in extra:
                values[n] = reasons if n == "reasons" else title
            text = plain_text(template.render(values, limit), multiline=multiline)
            return reflow(text) if multiline else text

        return render

    def build(
        self, opp: Opportunity, derived: Derived, today: date, reasons: list[str]
    ) -> list[PlannedAction]:
        out: list[PlannedAction] = []
        flag = self._flag
        if flag is not None:
            out.append(PlannedAction("flag", field=flag.field, value=flag.value))
        task = self._task
        if task is not None and self._subject is not None:
            if self._due is None:
                calendar = self._loaded.calendar
                assert calendar is not None
                self._due = calendar.add_business_days(today, task.due_in_business_days)
            remind = self._rule.actions.remind
            out.append(
                PlannedAction(
                    "task",
                    subject=self._subject(opp, derived, today, reasons),
                    body=self._body(opp, derived, today, reasons) if self._body else None,
                    due_date=self._due,
                    priority=task.priority,
                    remind_every_days=remind.every_days if remind else None,
                    remind_mode=remind.mode if remind else None,
                )
            )
        return out


_Render = Callable[[Opportunity, Derived, date, list[str]], str]


def reason_renderer(
    loaded: LoadedWorkflow, rule: CustomRule
) -> Callable[[Opportunity, Derived, date], str] | None:
    """A custom rule's `reason:` rendered for one deal (one line); None when it has none."""
    if not rule.reason:
        return None
    template = loaded.templates[rule.reason]
    title = rule_title(rule)
    read = values_reader([n for n in template.variables if n != "rule"])
    with_title = "rule" in template.variables

    def render(opp: Opportunity, derived: Derived, today: date) -> str:
        values = read(opp, derived, today)
        if with_title:
            values["rule"] = title
        return plain_text(template.render(values, REASON_LIMIT), multiline=False)

    return render
