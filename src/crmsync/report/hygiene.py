"""Pipeline hygiene: the workflows' open findings by rule and by owner, and each owner's hygiene
score (DOMAIN.md: the share of their open deals with no open finding), today and week by week.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from crmsync.model.snapshots import SnapshotRow

NO_OWNER = ""  # the owner key of deals (and findings) without an owner


@dataclass(frozen=True)
class Finding:
    """One open finding: a workflow's rule firing on a deal, and the deal's owner."""

    workflow: str
    rule: str
    key: str
    owner_id: str | None


def by_rule(findings: Iterable[Finding]) -> list[tuple[str, str, int]]:
    """(workflow, rule, open findings), most findings first, then by name."""
    counts: dict[tuple[str, str], int] = {}
    for f in findings:
        counts[(f.workflow, f.rule)] = counts.get((f.workflow, f.rule), 0) + 1
    return sorted(((w, r, n) for (w, r), n in counts.items()), key=lambda t: (-t[2], t[0], t[1]))


def by_owner(findings: Iterable[Finding]) -> list[tuple[str, int, int]]:
    """(owner id, open findings, deals with at least one), most findings first, then by id."""
    found: dict[str, int] = {}
    deals: dict[str, set[str]] = {}
    for f in findings:
        owner = f.owner_id or NO_OWNER
        found[owner] = found.get(owner, 0) + 1
        deals.setdefault(owner, set()).add(f.key)
    return sorted(((o, n, len(deals[o])) for o, n in found.items()), key=lambda t: (-t[1], t[0]))


@dataclass(frozen=True)
class Score:
    """One owner's hygiene on one day: open deals, how many had no open finding, the share."""

    owner_id: str
    deals: int
    clean: int

    @property
    def score(self) -> float:
        """clean / deals (an owner appears only with at least one open deal)."""
        return self.clean / self.deals


def scores(rows: Iterable[SnapshotRow]) -> list[Score]:
    """Each owner's hygiene score over one day's open rows, by owner id."""
    deals: dict[str, int] = {}
    clean: dict[str, int] = {}
    for row in rows:
        owner = row.owner_id or NO_OWNER
        deals[owner] = deals.get(owner, 0) + 1
        clean[owner] = clean.get(owner, 0) + (row.open_findings == 0)
    return [Score(o, deals[o], clean[o]) for o in sorted(deals)]


def overall(rows: Iterable[SnapshotRow]) -> float | None:
    """The share of all the day's open deals with no open finding (None with no deals)."""
    n = clean = 0
    for row in rows:
        n += 1
        clean += row.open_findings == 0
    return clean / n if n else None


def score_trend(
    days: Mapping[date, Iterable[Score]],
) -> dict[str, list[tuple[date, float]]]:
    """Per owner, (day, hygiene score) for each day they held open deals (from each day's
    `scores`), oldest first."""
    out: dict[str, list[tuple[date, float]]] = {}
    for day in sorted(days):
        for s in days[day]:
            out.setdefault(s.owner_id, []).append((day, s.score))
    return dict(sorted(out.items()))


def lowest_scores(scores: Iterable[Score], *, at_least: int, n: int) -> tuple[list[Score], int]:
    """The `n` lowest scores among owners with `at_least` open deals (a score over fewer deals
    swings with one finding), lowest first, then most deals, then by id; with the number of
    owners that qualified. When no owner qualifies, every owner does."""
    every = list(scores)
    eligible = [s for s in every if s.deals >= at_least] or every
    ranked = sorted(eligible, key=lambda s: (s.score, -s.deals, s.owner_id))
    return ranked[:n], len(eligible)
