"""Fencing tokens: a worker that lost its unit of work cannot write for it any more.

With several workers on one queue a job can outlive its claim: its worker paused (a long GC, a
suspended VM) or was cut off, the stalled-jobs task gave the job to another worker, and then the
first wakes up. The queue cannot stop it; the store does. A job takes the key's next token when
it starts (`take`); while it runs, `fenced` marks the thread's work with that token, and every
cursor move (store.batch) and outbox claim (store.outbox) calls `check` inside its own
transaction: a token that is no longer the newest raises FenceLost and the transaction writes
nothing. On PostgreSQL the check reads the token FOR SHARE, so a takeover's UPDATE waits for a
write already checked to commit, and never slips in between the check and the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from crmsync.store.errors import StoreError
from crmsync.store.schema import fences

if TYPE_CHECKING:  # store.store imports store.batch, which checks fences
    from crmsync.store.store import Store

__all__ = ["Fence", "FenceLost", "check", "current", "fenced", "newest", "take"]


@dataclass(frozen=True)
class Fence:
    """The token a job holds for its unit of work."""

    key: str
    token: int
    holder: str


class FenceLost(StoreError):
    """Another worker took this unit of work over: this job may not write for it any more.

    Transient in the sense that matters: nothing is wrong with the data or the config; the
    newer holder carries on, and this job stops without writing."""

    exit_code = 7
    transient = True


TAKE_WAIT_SECONDS = 10  # how long a new holder waits for the old one's write in flight

_CURRENT: ContextVar[Fence | None] = ContextVar("crmsync_fence", default=None)


def current() -> Fence | None:
    """The fence this thread's work runs under, if any."""
    return _CURRENT.get()


@contextmanager
def fenced(fence: Fence) -> Iterator[Fence]:
    """Run the block's store writes under `fence` (checked by cursor moves and outbox claims)."""
    token = _CURRENT.set(fence)
    try:
        yield fence
    finally:
        _CURRENT.reset(token)


def take(store: Store, key: str, holder: str, now: datetime) -> Fence:
    """Take the next token of `key` for `holder`: from now on, older holders are refused."""
    with store.writing("take fencing token") as conn:
        dialect = conn.dialect.name
        if dialect == "postgresql":  # a paused holder's open write must not hold the taker
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{TAKE_WAIT_SECONDS}s'")
        stmt = (sqlite.insert(fences) if dialect == "sqlite" else postgresql.insert(fences)).values(
            key=key, token=1, holder=holder, taken_at=now
        )
        bump = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"token": fences.c.token + 1, "holder": holder, "taken_at": now},
        ).returning(fences.c.token)
        token = int(conn.execute(bump).scalar_one())
    return Fence(key, token, holder)


def newest(store: Store, key: str) -> int | None:
    """The newest token of `key` (None before any job took one)."""
    with store.reading("read fencing token") as conn:
        value = conn.execute(sa.select(fences.c.token).where(fences.c.key == key)).scalar()
    return None if value is None else int(value)


def check(conn: Connection) -> None:
    """Inside a write transaction: raise FenceLost when this thread runs under a fence whose
    token is no longer the newest. A no-op outside a fenced job (the CLI, the single worker)."""
    fence = _CURRENT.get()
    if fence is None:
        return
    query = sa.select(fences.c.token, fences.c.holder).where(fences.c.key == fence.key)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    row = conn.execute(query).first()
    if row is None or int(row.token) != fence.token:
        newer = f"token {row.token} of {row.holder}" if row is not None else "no token"
        raise FenceLost(
            f"{fence.key}: another worker took this job over ({newer}, this job held "
            f"token {fence.token}); it stops without writing"
        )
