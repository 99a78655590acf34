"""What an example expects a rule it fires to write: the `expect:` of a workflow file's example.

```yaml
examples:
  - name: a quiet discovery deal
    ...
    fires: [no-recent-activity]
    expect:
      no-recent-activity:
        subject: "Acme renewal: no activity for 31 days"   # the whole rendered subject
        body_contains: "Log your last touch"               # a part of the body (or a list)
        due_date: 2026-11-24
        priority: high
        flag: stale                                        # the flag value it sets
```

Every part is optional; `subject` and `body` compare the whole text, `subject_contains` and
`body_contains` a part of it (or each of a list of parts). A rule named here must be in the
example's `fires`, and a task part needs a rule with a task, `flag` one with a flag: a file that
asks otherwise is refused when it is loaded. `crmsync test` fails the example when a part
differs, showing what was expected and what the rule wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

from pydantic import Field

from crmsync.files import FieldError, FileModel

__all__ = ["Expectation", "Mismatch", "check_expect", "mismatches"]

TASK_PARTS = ("subject", "subject_contains", "body", "body_contains", "due_date", "priority")


class Expectation(FileModel):
    """What one rule's firing should write, part by part (each optional)."""

    subject: str | None = Field(default=None, min_length=1)
    subject_contains: str | list[str] | None = None
    body: str | None = None
    body_contains: str | list[str] | None = None
    due_date: date | None = None
    priority: Literal["low", "normal", "high"] | None = None
    flag: str | None = Field(default=None, min_length=1)

    def asked(self) -> list[str]:
        """The parts this expectation sets, in file-model order."""
        return [name for name in type(self).model_fields if getattr(self, name) is not None]


@dataclass(frozen=True)
class Mismatch:
    """One part a rule wrote otherwise than the example expects."""

    rule: str
    part: str
    expected: str
    got: str


class _Action(Protocol):
    """What is compared of a planned action (`render.PlannedAction`)."""

    kind: str
    value: str | None
    subject: str | None
    body: str | None
    due_date: date | None
    priority: str | None


def check_expect(
    rules: dict[str, tuple[bool, bool]],
    examples: Sequence[tuple[list[str], dict[str, Expectation]]],
) -> None:
    """Refuse an `expect:` that cannot hold: `rules` gives each rule's (has a task, has a flag),
    `examples` each example's (fires, expect). Raises FieldError at the offending key."""
    for i, (fires, expect) in enumerate(examples):
        for rule_id, expectation in expect.items():
            where = ("examples", i, "expect", rule_id)
            if rule_id not in rules:
                raise FieldError(f"no rule '{rule_id}' in this workflow", *where, key=True)
            if rule_id not in fires:
                raise FieldError(
                    f"the example does not fire '{rule_id}' (add it to `fires` to check what it "
                    "writes)",
                    *where,
                    key=True,
                )
            has_task, has_flag = rules[rule_id]
            for part in expectation.asked():
                if part == "flag" and not has_flag:
                    raise FieldError(f"rule '{rule_id}' sets no flag", *where, part, key=True)
                if part in TASK_PARTS and not has_task:
                    raise FieldError(f"rule '{rule_id}' creates no task", *where, part, key=True)


def mismatches(rule: str, expectation: Expectation, actions: Sequence[_Action]) -> list[Mismatch]:
    """The parts of `expectation` that the rule's actions do not match."""
    task = next((a for a in actions if a.kind == "task"), None)
    flag = next((a for a in actions if a.kind == "flag"), None)
    out: list[Mismatch] = []

    def differ(part: str, expected: object, got: object) -> None:
        out.append(Mismatch(rule, part, _show(expected), _show(got)))

    e = expectation
    subject = task.subject if task else None
    body = task.body if task else None
    if e.subject is not None and subject != e.subject:
        differ("subject", e.subject, subject)
    for part in _parts(e.subject_contains):
        if part not in (subject or ""):
            differ("subject_contains", part, subject)
    if e.body is not None and (body or "").strip() != e.body.strip():
        differ("body", e.body.strip(), body)
    for part in _parts(e.body_contains):
        if part not in (body or ""):
            differ("body_contains", part, body)
    if e.due_date is not None and (task.due_date if task else None) != e.due_date:
        differ("due_date", e.due_date, task.due_date if task else None)
    if e.priority is not None and (task.priority if task else None) != e.priority:
        differ("priority", e.priority, task.priority if task else None)
    if e.flag is not None and (flag.value if flag else None) != e.flag:
        differ("flag", e.flag, flag.value if flag else None)
    return out


def _parts(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def _show(value: object) -> str:
    """A value as one line: text quoted (line breaks as \\n), a date as ISO, nothing as (none)."""
    if value is None:
        return "(none)"
    if isinstance(value, date):
        return value.isoformat()
    return repr(str(value))
