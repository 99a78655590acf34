"""What an evaluation hands on and counts: a rule firing on a deal (with the actions that
would follow) and the (workflow, connection) summary; and which derived fields a workflow reads.
Shared by both engines (`plan` and `columnar`)."""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import structlog

from crmsync.model import Opportunity
from crmsync.workflows.context import DERIVED_FIELDS
from crmsync.workflows.derived import derive_fields
from crmsync.workflows.explain import shown
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.render import PlannedAction
from crmsync.workflows.rules import derived_needs

log = structlog.get_logger("crmsync.workflows")


@dataclass
class Firing:
    """A rule that fires on an opportunity, with its reasons and the actions that would follow.

    `evaluate_stream` builds the actions (rendered task texts, due dates) before it hands the
    firing on, so that a text that cannot be rendered sets the firing aside; `make_actions`
    builds them on first read for a firing made elsewhere, or made with `actions_on_read`
    (apply), whose reader then meets the TemplateError.
    """

    workflow: str
    rule_id: str
    rule_title: str
    kind: str
    opportunity: Opportunity
    reasons: list[str]
    make_actions: Callable[[], list[PlannedAction]] = field(
        repr=False, compare=False, default=lambda: []
    )
    route: str | None = None  # "manager: <why>" etc. when the task goes to another owner
    # whether the actions hold a task, known without building them (None: read them)
    has_task: bool | None = field(default=None, compare=False)
    values: dict[str, Any] | None = None  # a custom rule's: what its condition read
    _actions: list[PlannedAction] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def actions(self) -> list[PlannedAction]:
        """Built on first read, then kept (a plain attribute: cached_property takes a lock)."""
        built = self._actions
        if built is None:
            built = self._actions = self.make_actions()
        return built

    def deferred_actions(self) -> Callable[[], list[PlannedAction]]:
        """The actions as a call that gives them: those built, or the maker, not run yet (so
        that another firing made from this one builds them only when read)."""
        built = self._actions
        return self.make_actions if built is None else functools.partial(list, built)

    def as_json(self) -> dict[str, Any]:
        opp = self.opportunity
        return {
            "workflow": self.workflow,
            "rule": self.rule_id,
            "kind": self.kind,
            "title": self.rule_title,
            "opportunity": opp.key,
            "name": opp.name,
            "owner": opp.owner_name or opp.owner_id,
            "owner_email": opp.owner_email,
            "stage": opp.stage_canonical,
            "amount": None if opp.amount is None else str(opp.amount),
            "reasons": self.reasons,
            **({"route": self.route} if self.route else {}),
            **({"values": {k: shown(v) for k, v in self.values.items()}} if self.values else {}),
            "actions": [
                {
                    k: (v.isoformat() if isinstance(v, date) else v)
                    for k, v in dataclasses.asdict(a).items()
                    if v is not None
                }
                for a in self.actions
            ],
        }


@dataclass
class PlanSummary:
    """Counts of one (workflow, connection) evaluation."""

    workflow: str
    connection: str
    evaluated: int = 0
    in_scope: int = 0
    firings: int = 0
    opportunities_fired: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_owner: Counter[str] = field(default_factory=Counter)
    condition_errors: int = 0
    render_errors: int = 0  # firings set aside: a task text could not be rendered


OnFiring = Callable[[Firing], None]
# (rule, opportunity key) of a deal the evaluation could not decide: a condition raised or a
# text failed (rule None: the workflow's scope, so every rule). Not a sign the finding is gone.
OnUndecided = Callable[[str | None, str], None]


def derived_needs_of(loaded: LoadedWorkflow) -> frozenset[str]:
    """The derived fields a workflow reads at all: in its checks, conditions and task texts."""
    derived_names = set(DERIVED_FIELDS)
    needed: set[str] = set()
    for rule in loaded.workflow.rules:
        needed |= derived_needs(rule)
    for condition in loaded.conditions.values():
        needed.update(n for n in condition.variables if n in derived_names)
    for template in loaded.templates.values():
        needed.update(n for n in template.variables if n in derived_names)
    return derive_fields(needed)


class FailureLog:
    """Logs the first failing deal of each rule once per evaluation (both engines): the counts
    go to the summary, the log says which rule and why without a line per deal."""

    def __init__(
        self,
        workflow: str,
        connection: str,
        on_set_aside: Callable[[str, str, str], None] | None = None,
        on_undecided: OnUndecided | None = None,
    ) -> None:
        self.workflow, self.connection, self.on_set_aside = workflow, connection, on_set_aside
        self.on_undecided = on_undecided
        self._conditions: set[str | None] = set()
        self._renders: set[str] = set()

    def condition(self, rule: str | None, opportunity: str, error: Exception) -> None:
        """A condition that raised (`rule` None: the workflow's scope)."""
        if self.on_undecided is not None:
            self.on_undecided(rule, opportunity)
        if rule in self._conditions:
            return
        self._conditions.add(rule)
        log.warning(
            "plan.condition_failed",
            workflow=self.workflow,
            connection=self.connection,
            rule=rule or "scope",
            opportunity=opportunity,
            error=f"{type(error).__name__}: {error}"[:300],
        )

    def render(self, rule: str, opportunity: str, error: Exception) -> None:
        """A task text that cannot be rendered: the firing is set aside (and reported)."""
        if self.on_set_aside is not None:
            self.on_set_aside(rule, opportunity, str(error))
        if self.on_undecided is not None:
            self.on_undecided(rule, opportunity)
        if rule in self._renders:
            return
        self._renders.add(rule)
        log.warning(
            "plan.render_failed",
            workflow=self.workflow,
            connection=self.connection,
            rule=rule,
            opportunity=opportunity,
            error=str(error)[:300],
        )
