"""The pipeline review report: read the snapshots, the deals and the findings from the store,
narrow them to the asked scope, and hand them to the report's pure figures (`report.figures`).

Reads only. The period defaults to the config's `report.weeks` up to today (UTC); filters are
the connections, one pipeline, one owner (id, name or email) or one team (owner directory).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import structlog

from crmsync.config import Config
from crmsync.errors import InvalidInput
from crmsync.model.snapshots import SnapshotRow
from crmsync.report import flow, stages
from crmsync.report.coverage import Coverage, coverage, parse_quotas
from crmsync.report.document import ReportDoc
from crmsync.report.figures import assemble
from crmsync.report.hygiene import Finding
from crmsync.report.inputs import Deal, Inputs, currency_label
from crmsync.report.weeks import DayGroup, WeekFigures, week_from_groups
from crmsync.store import Store
from crmsync.store.owners import load_owners
from crmsync.store.report_reads import (
    DealFacts,
    deal_facts,
    findings_known_since,
    open_findings,
    snapshot_groups,
)
from crmsync.store.snapshots import read_as_of, snapshot_days

__all__ = ["ReportOptions", "build_report"]

log = structlog.get_logger("crmsync.app.report")
EARLIEST = date(1900, 1, 1)  # before any snapshot: "any day up to"


@dataclass(frozen=True)
class ReportOptions:
    """What the report covers; None and empty mean the defaults (all connections, no filter)."""

    since: date | None = None
    until: date | None = None
    connections: tuple[str, ...] = ()
    pipeline: str | None = None
    owner: str | None = None
    team: str | None = None
    quota_file: Path | None = None


@dataclass(frozen=True)
class _Owner:
    """One owner as the report knows them: the directory's entry, else what deals say."""

    id: str
    connection: str
    name: str | None
    email: str | None
    teams: tuple[str, ...]


def build_report(
    store: Store, config: Config, options: ReportOptions, *, now: datetime
) -> ReportDoc:
    """The pipeline review for the options' scope and period, as of `now`."""
    started = time.monotonic()
    until = options.until or now.date()
    since = options.since or until - timedelta(weeks=config.report.weeks)
    if since > until:
        raise InvalidInput(f"--since {since} is after --until {until}")
    names = list(options.connections) or [c.name for c in config.connections]
    for name in names:
        config.connection(name)  # an unknown name is an InvalidInput listing the known ones
    deals = list(deal_facts(store, names))
    owners = _owners(store, names, deals)
    pipelines = sorted({d.pipeline for d in deals if d.pipeline})
    if options.pipeline is not None and options.pipeline not in pipelines:
        raise InvalidInput(
            f"--pipeline {options.pipeline}: no deal is in that pipeline "
            f"(known: {', '.join(pipelines) or 'none'})"
        )
    keep_owner = _owner_filter(options, owners)

    def kept(pipeline: str | None, owner_id: str | None) -> bool:
        if options.pipeline is not None and pipeline != options.pipeline:
            return False
        return keep_owner is None or owner_id in keep_owner

    def narrow(rows: Sequence[SnapshotRow]) -> list[SnapshotRow]:
        return [r for r in rows if kept(r.pipeline, r.owner_id)]

    window_end = flow.quarter_end(until)
    notes: list[str] = []
    any_day = snapshot_days(store, names, EARLIEST, until)
    start_day = since
    if any_day and any_day[0] > since:
        start_day = any_day[0]
        notes.append(
            f"The first daily snapshot is from {start_day.isoformat()}, after the period's "
            "start: the movement is counted from that day."
        )
    start_all = read_as_of(store, start_day, names) if any_day else []
    end_all = read_as_of(store, until, names) if any_day else []
    weekly = {
        d: _week(store, d, names, window_end, kept)
        for d in flow.week_ends(since, until)
        if any_day and any_day[0] <= d
    }
    by_key = {d.key: d for d in deals}
    in_scope = [d for d in deals if kept(d.pipeline, d.owner_id)]
    start, end = narrow(start_all), narrow(end_all)
    latest = max((r.day for r in end_all), default=None)
    if latest is not None and latest < until:
        notes.append(
            f"The latest daily snapshot is from {latest.isoformat()}: the figures for "
            f"{until.isoformat()} are those of that day."
        )
    end_keys = {r.key for r in end}
    fate = {r.key: _fate(by_key.get(r.key)) for r in start if r.key not in end_keys}
    open_keys = {d.key for d in in_scope if not d.is_closed}
    findings = [
        Finding(f.workflow, f.rule, f.opp_key, by_key[f.opp_key].owner_id)
        for f in open_findings(store, names)
        if f.opp_key in open_keys
    ]
    quota = _coverage(options, config, end, owners)
    currencies = sorted({flow.currency_of(r) for r in (*start, *end)})
    inputs = Inputs(
        since=since,
        until=until,
        window_end=window_end,
        generated_at=now,
        scope=_scope(options, names, owners, currencies, since, until, window_end),
        notes=notes,
        start=start,
        end=end,
        weekly=weekly,
        fate=fate,
        deals={  # the tables name only deals open at either end
            k: Deal(by_key[k].name, by_key[k].connection)
            for k in {r.key for r in (*start, *end)}
            if k in by_key
        },
        owner_names=_labels(owners),
        pushes={d.key: d.pushes for d in in_scope if d.pushes},
        stays=[stay for d in in_scope for stay in d.stays],
        paths=[stages.path_of(d.stays, d.stage_canonical) for d in in_scope],
        in_stage=[
            (d.stage_canonical, (now - d.stage_entered_at).total_seconds() / 86400.0)
            for d in in_scope
            if not d.is_closed and d.stage_entered_at is not None
        ],
        findings=findings,
        coverage=quota,
        has_snapshots=bool(any_day),
        findings_known=_findings_known(store, names, until),
        filtered=options.pipeline is not None or keep_owner is not None,
    )
    doc = assemble(inputs)
    log.info(
        "report.built",
        connections=",".join(names),
        since=since.isoformat(),
        until=until.isoformat(),
        deals=len(in_scope),
        open_rows=len(end),
        sections=len(doc.sections),
        seconds=round(time.monotonic() - started, 3),
    )
    return doc


def _week(
    store: Store,
    day: date,
    names: Sequence[str],
    window_end: date,
    kept: Callable[[str | None, str | None], bool],
) -> WeekFigures:
    """One week's trend figures from the store's grouped snapshot (no deal rows read here)."""
    return week_from_groups(
        DayGroup(g.owner_id, g.currency, g.in_window, g.deals, g.clean, Decimal(repr(g.amount)))
        for g in snapshot_groups(store, day, names, window_end)
        if kept(g.pipeline, g.owner_id)
    )


def _findings_known(store: Store, names: Sequence[str], until: date) -> date | None:
    """The first day whose snapshots know every connection's findings (None: not yet): the
    latest of the connections' first days, over the connections that have snapshots."""
    known = findings_known_since(store, names)
    for name in names:
        if name not in known and snapshot_days(store, [name], EARLIEST, until):
            return None
    return max(known.values(), default=None)


def _fate(deal: DealFacts | None) -> str:
    """What became of a deal that left the pipeline: won, lost (or deleted), or still open."""
    if deal is None:
        return flow.LOST  # deleted: the store keeps no live record of it
    if deal.is_closed:
        return flow.WON if deal.is_won else flow.LOST
    return flow.OPEN


def _owners(store: Store, names: Sequence[str], deals: Sequence[DealFacts]) -> dict[str, _Owner]:
    """Every owner of the connections by id: the owner directory first, then the deals' own
    owner name and email for owners the directory does not list."""
    out: dict[str, _Owner] = {}
    for name in names:
        for entry in load_owners(store, name).values():
            out[entry.id] = _Owner(entry.id, name, entry.name, entry.email, entry.teams)
    for d in deals:
        if d.owner_id and d.owner_id not in out:
            out[d.owner_id] = _Owner(d.owner_id, d.connection, d.owner_name, d.owner_email, ())
    return out


def _labels(owners: dict[str, _Owner]) -> dict[str, str]:
    """Each owner's name as charts show it, unique: a name two owners share (the same person in
    both CRMs, or namesakes) gets the connection after it; namesakes in one CRM get their email
    instead (a reader knows it, not the CRM's id), and the id only when all else fails."""
    named = {o.id: o.name for o in owners.values() if o.name}
    seen = Counter(named.values())
    out = {i: n if seen[n] == 1 else f"{n} ({owners[i].connection})" for i, n in named.items()}
    again = Counter(out.values())
    out = {
        i: label if again[label] == 1 or not owners[i].email else f"{named[i]} ({owners[i].email})"
        for i, label in out.items()
    }
    last = Counter(out.values())
    return {i: label if last[label] == 1 else f"{label} {i}" for i, label in out.items()}


def _matching(who: str, owners: dict[str, _Owner]) -> set[str]:
    """The owner ids `who` names: an id, else a name or an email (any case)."""
    if who in owners:
        return {who}
    low = who.casefold()
    return {
        o.id
        for o in owners.values()
        if (o.name or "").casefold() == low or (o.email or "").casefold() == low
    }


def _owner_filter(options: ReportOptions, owners: dict[str, _Owner]) -> set[str] | None:
    """The owner ids the owner and team filters keep (None: no filter)."""
    keep: set[str] | None = None
    if options.owner is not None:
        keep = _matching(options.owner, owners)
        if not keep:
            raise InvalidInput(f"--owner {options.owner}: no owner has that id, name or email")
    if options.team is not None:
        team = {o.id for o in owners.values() if options.team in o.teams}
        if not team:
            raise InvalidInput(f"--team {options.team}: no owner belongs to that team")
        keep = team if keep is None else keep & team
    return keep


def _coverage(
    options: ReportOptions, config: Config, end: Sequence[SnapshotRow], owners: dict[str, _Owner]
) -> list[Coverage] | None:
    """Coverage of the quota file's lines, or None when no quota file is given."""
    path = options.quota_file or config.report.quota_file
    if path is None:
        return None
    if options.quota_file is None and not path.is_absolute() and config.source is not None:
        path = config.source.parent / path
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InvalidInput(f"quota file {path}: cannot be read ({e.strerror})") from None
    quotas = parse_quotas(text, str(path))
    for q in quotas:
        if not _who(q.who, owners):
            raise InvalidInput(
                f"{path}, line {q.line}, owner_or_team: {q.who!r} is no owner id, owner email "
                "or team"
            )
    return coverage(quotas, end, lambda who: _who(who, owners))


def _who(who: str, owners: dict[str, _Owner]) -> set[str]:
    """A quota line's owners: an owner (id, name or email), else a team's members."""
    return _matching(who, owners) or {o.id for o in owners.values() if who in o.teams}


def _scope(
    options: ReportOptions,
    names: Sequence[str],
    owners: dict[str, _Owner],
    currencies: Sequence[str],
    since: date,
    until: date,
    window_end: date,
) -> tuple[str, ...]:
    """The report's scope in plain lines, filters and currencies included."""
    lines = [f"Connections: {', '.join(names)}"]
    lines.append(f"Period: {since.isoformat()} to {until.isoformat()}")
    lines.append(f"Pipeline movement counts open deals closing by {window_end.isoformat()}")
    if options.pipeline is not None:
        lines.append(f"Pipeline: {options.pipeline}")
    if options.owner is not None:
        shown = sorted(owners[i].name or i for i in _matching(options.owner, owners))
        lines.append(f"Owner: {', '.join(shown)}")
    if options.team is not None:
        lines.append(f"Team: {options.team}")
    shown_currencies = ", ".join(currency_label(c) for c in currencies) or "none yet"
    lines.append(f"Amounts per currency: {shown_currencies}")
    lines.append(
        "The deals carry no exchange rates, so amounts are never converted or added "
        "across currencies."
    )
    return tuple(lines)
