"""The write-back bookkeeping: rule episodes, the outbox of intended writes, flag state, audit.

A plan is recorded in ONE transaction (episodes, new outbox rows, flag state, audit) before any
CRM call; each state change of an outbox row commits together with its audit entry. After a
crash, what is in the outbox is exactly what still has to be done or checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.store import fences
from crmsync.store.audit_log import audit_trail as audit_trail  # where callers look for it
from crmsync.store.engine import chunks, execute_many, insert_ignoring_duplicates, upsert
from crmsync.store.outbox_sql import audit_row, audit_values, write_audit_rows
from crmsync.store.outbox_sql import record_stamps as record_stamps  # where callers look
from crmsync.store.outbox_sql import transition as transition  # for them
from crmsync.store.schema import episodes, flag_state, outbox

if TYPE_CHECKING:
    from crmsync.store.store import Store

# planned: recorded, not sent; sent: handed to the CRM, outcome not yet recorded; failed: will be
# retried; confirmed: done; parked: given up with the CRM's reason; skipped: deliberately not
# sent (the record changed since it was read, or there is nothing left to change); cancelled:
# no longer wanted (the rule stopped firing before the write went out).
STATES = ("planned", "sent", "failed", "confirmed", "parked", "skipped", "cancelled")
PENDING = ("planned", "sent", "failed")


@dataclass
class Episode:
    """A rule firing on one opportunity, from the first time it fired until it stops."""

    workflow: str
    rule: str
    opp_key: str
    connection: str
    native_id: str
    owner_id: str | None
    state: str  # open | resolved
    occurrence: int
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None
    flag_field: str | None = None
    flag_value: str | None = None
    task_key: str | None = None
    reminders: int = 0
    last_task_on: date | None = None
    left_to_rep: str | None = None  # the rep deleted, completed, re-dated or dismissed the task
    enroll: str | None = None  # waiting | held: found when the workflow went live
    left_at: datetime | None = None  # when crmsync noticed what the rep did


@dataclass
class OutboxRow:
    """One intended CRM write; `key` is its idempotency key."""

    key: str
    connection: str
    workflow: str
    rule: str | None
    opp_key: str
    native_id: str
    kind: str
    payload: dict[str, Any]
    state: str = "planned"
    attempts: int = 0
    crm_id: str | None = None
    error: str | None = None
    seq: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class AuditEntry:
    at: datetime
    key: str
    connection: str
    workflow: str
    rule: str | None
    opp_key: str
    native_id: str
    kind: str
    state: str
    detail: str | None = None

    @classmethod
    def of(cls, row: OutboxRow, state: str, at: datetime, detail: str | None) -> AuditEntry:
        return cls(
            at, row.key, row.connection, row.workflow, row.rule, row.opp_key, row.native_id,
            row.kind, state, detail,
        )  # fmt: skip


@dataclass
class PlanRecord:
    """Everything one (workflow, connection) plan changes, written at once."""

    episodes: list[Episode] = field(default_factory=list)
    rows: list[OutboxRow] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)  # outbox keys no longer wanted
    flags: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)


@dataclass
class Transition:
    """A state change of one outbox row."""

    key: str
    state: str
    attempts: int | None = None
    crm_id: str | None = None
    error: str | None = None
    detail: str | None = None


_EPISODE_COLUMNS = [c.name for c in episodes.columns]
_OUTBOX_COLUMNS = [
    f.name for f in fields(OutboxRow) if f.name not in ("seq", "created_at", "updated_at")
]
# the values of a dataclass's fields, not copied (dataclasses.asdict deep-copies every payload)
# an outbox row's columns in OutboxRow's field order, to build rows without a dict per row
_ROW_COLUMNS = [outbox.c[f.name] for f in fields(OutboxRow)]
_episode_values = attrgetter(*_EPISODE_COLUMNS)
_outbox_values = attrgetter(*_OUTBOX_COLUMNS)


def load_episodes(store: Store, workflow: str, connection: str) -> dict[tuple[str, str], Episode]:
    """Every episode of one workflow on one connection, open or resolved, by (rule, opp key)."""
    with store.reading("read episodes") as conn:
        rows = conn.execute(
            sa.select(episodes).where(
                episodes.c.workflow == workflow, episodes.c.connection == connection
            )
        )
        return {(r.rule, r.opp_key): Episode(**r._asdict()) for r in rows}


def open_flags(
    store: Store, connection: str, *, except_workflows: Iterable[str] = ()
) -> dict[tuple[str, str], set[str]]:
    """Per (opportunity, flag field), the values open episodes want set (of every workflow but
    `except_workflows`, whose own are being recomputed)."""
    out: dict[tuple[str, str], set[str]] = {}
    query = sa.select(episodes.c.opp_key, episodes.c.flag_field, episodes.c.flag_value).where(
        episodes.c.connection == connection,
        episodes.c.state == "open",
        episodes.c.flag_field.is_not(None),
    )
    skip = list(except_workflows)
    if skip:
        query = query.where(episodes.c.workflow.not_in(skip))
    with store.reading("read open flags") as conn:
        for opp_key, name, value in conn.execute(query):
            out.setdefault((opp_key, name), set()).add(value)
    return out


def flag_states(store: Store, connection: str) -> dict[tuple[str, str], str | None]:
    """What crmsync last wrote to each (opportunity, flag field)."""
    with store.reading("read flag state") as conn:
        rows = conn.execute(
            sa.select(flag_state.c.opp_key, flag_state.c.field, flag_state.c.value).where(
                flag_state.c.connection == connection
            )
        )
        return {(k, f): v for k, f, v in rows}


def open_task_keys(store: Store, connection: str) -> dict[tuple[str, str, str], str]:
    """The task each open episode of a connection holds, by (workflow, rule, opp key)."""
    query = sa.select(
        episodes.c.workflow, episodes.c.rule, episodes.c.opp_key, episodes.c.task_key
    ).where(
        episodes.c.connection == connection,
        episodes.c.state == "open",
        episodes.c.task_key.is_not(None),
    )
    with store.reading("read open tasks") as conn:
        return {(w, r, k): t for w, r, k, t in conn.execute(query)}


def tasks_created_since(store: Store, connection: str, since: datetime) -> Counter[str]:
    """New tasks recorded per owner since `since`, of every workflow (for the owners' daily
    budget; a digest's payload says it counts 0)."""
    counts: Counter[str] = Counter()
    with store.reading("count tasks") as conn:
        rows = conn.execute(
            sa.select(outbox.c.payload).where(
                outbox.c.connection == connection,
                outbox.c.kind == "task.create",
                outbox.c.created_at >= since,
                outbox.c.state.not_in(("cancelled",)),
            )
        )
        for (payload,) in rows:
            counts[str(payload.get("owner_id") or "")] += payload.get("counts_as", 1)
    return counts


def record_plan(store: Store, plan: PlanRecord, now: datetime) -> set[str]:
    """Write a plan's episodes, new outbox rows, flag state and audit in one transaction.

    Rows whose key is already in the outbox are left as they are (the same intention, planned
    before): that is what makes planning twice harmless. Returns the keys of the new rows; the
    row objects stored get their seq and time stamps, so that they are the rows as recorded.
    """
    with store.writing("record plan") as conn:
        fences.check(conn)  # a plan from a job another worker took over is not recorded
        dialect = conn.dialect.name
        if plan.episodes:
            stmt = upsert(
                dialect,
                episodes,
                ["workflow", "rule", "opp_key"],
                [c for c in _EPISODE_COLUMNS if c not in ("workflow", "rule", "opp_key")],
            )
            execute_many(conn, stmt, _EPISODE_COLUMNS, [_episode_values(e) for e in plan.episodes])
        fresh: set[str] = set()
        if plan.rows:
            start = conn.execute(sa.select(sa.func.coalesce(sa.func.max(outbox.c.seq), 0))).scalar()
            fresh = _missing_keys(conn, [r.key for r in plan.rows])
            names = [*_OUTBOX_COLUMNS, "seq", "created_at", "updated_at"]
            seq = int(start or 0)
            values = []
            stored: set[str] = set()
            for row in plan.rows:
                seq += 1  # numbered in planning order, over every row as before
                if row.key in fresh:
                    values.append((*_outbox_values(row), seq, now, now))
                    if row.key not in stored:  # the one stored (a later twin is ignored)
                        stored.add(row.key)
                        row.seq, row.created_at, row.updated_at = seq, now, now
            if values:
                execute_many(conn, insert_ignoring_duplicates(dialect, outbox), names, values)
        if plan.cancel:
            for chunk in chunks(plan.cancel):
                conn.execute(
                    sa.update(outbox)
                    .where(outbox.c.key.in_(chunk), outbox.c.state.in_(("planned", "failed")))
                    .values(state="cancelled", updated_at=now)
                )
        if plan.flags:
            stmt = upsert(
                dialect, flag_state, ["connection", "opp_key", "field"], ["value", "updated_at"]
            )
            names = ["connection", "opp_key", "field", "value", "updated_at"]
            last = {(c, k, f): v for c, k, f, v in plan.flags}  # a later plan's value wins
            execute_many(conn, stmt, names, [(*where, v, now) for where, v in last.items()])
        entries = [audit_values(e) for e in plan.audit]
        entries.extend(audit_row(r, "planned", now, None) for r in plan.rows if r.key in fresh)
        write_audit_rows(conn, entries)
        return fresh


def _missing_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    present: set[str] = set()
    for chunk in chunks(keys):
        present.update(
            conn.execute(sa.select(outbox.c.key).where(outbox.c.key.in_(chunk))).scalars()
        )
    return set(keys) - present


def pending(
    store: Store,
    connection: str,
    workflows: Iterable[str] | None = None,
    *,
    states: Sequence[str] = PENDING,
    min_attempts: int | None = None,
    known: Mapping[str, OutboxRow] | None = None,
) -> list[OutboxRow]:
    """Outbox rows still to send or to check (or those of `states` with at least
    `min_attempts` attempts), in the order they were planned. `known`: rows in hand as
    recorded (a plan's new rows); one still in the state and at the attempt count it has there
    is taken as it is, not read and decoded again (only key, state and attempts are read)."""
    where = _pending_where(connection, workflows, states)
    if min_attempts is not None:
        where.append(outbox.c.attempts >= min_attempts)
    if not known:
        with store.reading("read outbox") as conn:
            query = sa.select(*_ROW_COLUMNS).where(*where).order_by(outbox.c.seq)
            return [OutboxRow(*r) for r in conn.execute(query)]
    heads = sa.select(outbox.c.key, outbox.c.state, outbox.c.attempts).where(*where)
    with store.reading("read outbox") as conn:  # one transaction: one snapshot
        found = conn.execute(heads.order_by(outbox.c.seq)).all()
        same = {k for k, state, attempts in found if (r := known.get(k)) is not None
                and (r.state, r.attempts) == (state, attempts)}  # fmt: skip
        read = _rows_by_key(conn, [k for k, _, _ in found if k not in same])
    return [known[k] if k in same else read[k] for k, _, _ in found if k in same or k in read]


def count_pending(store: Store, connection: str, workflows: Iterable[str] | None = None) -> int:
    """How many outbox rows are still to send or to check."""
    query = sa.select(sa.func.count()).where(*_pending_where(connection, workflows, PENDING))
    with store.reading("count outbox") as conn:
        return int(conn.execute(query).scalar() or 0)


def _pending_where(
    connection: str, workflows: Iterable[str] | None, states: Sequence[str]
) -> list[Any]:
    where = [outbox.c.connection == connection, outbox.c.state.in_(list(states))]
    if workflows is not None:
        where.append(outbox.c.workflow.in_(list(workflows)))
    return where


def rows_by_key(store: Store, keys: Sequence[str]) -> dict[str, OutboxRow]:
    with store.reading("read outbox") as conn:
        return _rows_by_key(conn, keys)


def _rows_by_key(conn: Connection, keys: Sequence[str]) -> dict[str, OutboxRow]:
    out: dict[str, OutboxRow] = {}
    for chunk in chunks(keys):
        for r in conn.execute(sa.select(*_ROW_COLUMNS).where(outbox.c.key.in_(chunk))):
            out[r.key] = OutboxRow(*r)
    return out
