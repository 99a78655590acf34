"""The column lists and statements the store's readers share: whole records, history rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from crmsync.store import codec
from crmsync.store.schema import field_history, opportunities

OPP_COLUMNS = [opportunities.c[name] for name in codec.FIELD_NAMES]
# The same columns with the costly ones left undecoded, for codec.opportunity_from_raw.
OPP_RAW_COLUMNS = [
    sa.type_coerce(c, sa.types.NullType()).label(c.name) if i in codec.RAW_AT else c
    for i, c in enumerate(OPP_COLUMNS)
]
HISTORY_COLUMNS = [field_history.c[name] for name in codec.HISTORY_NAMES]
HISTORY_RAW_COLUMNS = [  # changed_at undecoded, for types.as_utc
    sa.type_coerce(c, sa.types.NullType()).label(c.name) if c.name == "changed_at" else c
    for c in HISTORY_COLUMNS
]
HISTORY_ORDER = (field_history.c.key, field_history.c.changed_at, field_history.c.id)


def history_stream(
    columns: Sequence[Any], connection: str | None, fields: Sequence[str] | None
) -> sa.Select[Any]:
    """History rows of one connection (or all), of some fields (or all), by key then time."""
    stmt = sa.select(*columns)
    if connection is not None:
        stmt = stmt.where(field_history.c.key.startswith(connection + ":", autoescape=True))
    if fields is not None:
        stmt = stmt.where(field_history.c.field.in_(list(fields)))
    return stmt.order_by(*HISTORY_ORDER)


def filtered(stmt: sa.Select[Any], connection: str | None, include_deleted: bool) -> sa.Select[Any]:
    """A statement over the opportunities of one connection (or all), live ones only unless
    `include_deleted`."""
    stmt = stmt.select_from(opportunities)
    if connection is not None:
        stmt = stmt.where(opportunities.c.connection == connection)
    if not include_deleted:
        stmt = stmt.where(opportunities.c.deleted.is_(False))
    return stmt
