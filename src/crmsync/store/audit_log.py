"""Reading the audit log by workflow and rule: the rule an entry counts under, and summaries.

Rule ids are unique only within a workflow, so every filter and summary here goes by
(workflow, rule). Two kinds of write serve several rules at once and name none: the merged
flag write of a deal (shown as `flags`) and an owner's digest task (shown as `digest`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmsync.store.schema import audit

if TYPE_CHECKING:
    from crmsync.store.store import Store

__all__ = [
    "ALL_RULES",
    "RuleSummary",
    "audit_summary",
    "audit_trail",
    "audit_workflows",
    "rule_column",
    "rule_label",
]

ALL_RULES = "(all)"  # the summary line of a whole workflow


def rule_label(rule: str | None, kind: str) -> str:
    """The rule an audit entry counts under: its own, `flags` or `digest` when it has none."""
    if rule:
        return rule
    return "flags" if kind.startswith("flag") else "digest"


def rule_column() -> Any:
    """`rule_label` in SQL, for filters and grouping."""
    return sa.case(
        (audit.c.rule.is_not(None), audit.c.rule),
        (audit.c.kind.like("flag%"), sa.literal("flags")),
        else_=sa.literal("digest"),
    )


def filters(
    *,
    workflow: str | None = None,
    rule: str | None = None,
    opportunity: str | None = None,
    since: datetime | None = None,
) -> list[Any]:
    """The WHERE clauses of an audit query (`opportunity`: a native id or a crmsync key)."""
    where: list[Any] = []
    if workflow:
        where.append(audit.c.workflow == workflow)
    if rule:
        where.append(rule_column() == rule)
    if opportunity:
        where.append(sa.or_(audit.c.native_id == opportunity, audit.c.opp_key == opportunity))
    if since:
        where.append(audit.c.at >= since)
    return where


@dataclass
class RuleSummary:
    """Audit entries of one workflow's rule (or of the whole workflow, rule `(all)`)."""

    workflow: str
    rule: str
    entries: int = 0
    deals: int = 0  # distinct opportunities
    by_state: Counter[str] = field(default_factory=Counter)
    first_at: datetime | None = None
    last_at: datetime | None = None


def audit_summary(
    store: Store,
    *,
    workflow: str | None = None,
    rule: str | None = None,
    opportunity: str | None = None,
    since: datetime | None = None,
) -> list[RuleSummary]:
    """Per workflow, its total (rule `(all)`) and then each rule: entries by state, the deals
    they touched, and the first and last entry; ordered by workflow, the total first."""
    where = filters(workflow=workflow, rule=rule, opportunity=opportunity, since=since)
    label = rule_column().label("rule_label")
    out: dict[tuple[str, str], RuleSummary] = {}
    with store.reading("summarize audit") as conn:
        for wf, name, state, n in conn.execute(
            sa.select(audit.c.workflow, label, audit.c.state, sa.func.count())
            .where(*where)
            .group_by(audit.c.workflow, label, audit.c.state)
        ):
            for key in ((wf, ALL_RULES), (wf, name)):
                s = out.setdefault(key, RuleSummary(*key))
                s.by_state[state] += int(n)
                s.entries += int(n)
        for wf, name, deals, first, last in conn.execute(
            sa.select(
                audit.c.workflow,
                label,
                sa.func.count(sa.distinct(audit.c.opp_key)),
                sa.func.min(audit.c.at),
                sa.func.max(audit.c.at),
            )
            .where(*where)
            .group_by(audit.c.workflow, label)
        ):
            out[wf, name].deals = int(deals)
            out[wf, name].first_at, out[wf, name].last_at = first, last
        for wf, deals, first, last in conn.execute(
            sa.select(
                audit.c.workflow,
                sa.func.count(sa.distinct(audit.c.opp_key)),
                sa.func.min(audit.c.at),
                sa.func.max(audit.c.at),
            )
            .where(*where)
            .group_by(audit.c.workflow)
        ):
            total = out[wf, ALL_RULES]
            total.deals, total.first_at, total.last_at = int(deals), first, last
    return sorted(out.values(), key=lambda s: (s.workflow, s.rule != ALL_RULES, s.rule))


def audit_trail(
    store: Store,
    *,
    opportunity: str | None = None,
    rule: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
    workflow: str | None = None,
) -> list[dict[str, Any]]:
    """The latest `limit` audit entries, oldest first; `opportunity` matches a native id or a
    crmsync key, `rule` a rule id or `flags`/`digest` (rule_label)."""
    where = filters(workflow=workflow, rule=rule, opportunity=opportunity, since=since)
    query = sa.select(audit).where(*where).order_by(audit.c.id.desc()).limit(limit)
    with store.reading("read audit") as conn:
        rows = [r._asdict() for r in conn.execute(query)]
    rows.reverse()
    return rows


def audit_workflows(store: Store) -> list[str]:
    """The workflows the audit has entries of (one removed from the files included)."""
    with store.reading("list audited workflows") as conn:
        return sorted(conn.execute(sa.select(audit.c.workflow).distinct()).scalars())
