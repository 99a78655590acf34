"""Whole deals with their history summaries, by key: the few a columnar evaluation fires on,
whose task texts and write-back need every field (the columnar read gives only a rule's columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmsync.store.schema import history_summaries, opportunities

if TYPE_CHECKING:
    from crmsync.store.store import Store


def records(
    store: Store, keys: Sequence[str], version: str, *, chunk: int = 500
) -> dict[str, tuple[Any, Any]]:
    """Whole deals with their summaries of `version` (or None), by key: the few a columnar
    evaluation fires on, whose task texts need every field."""
    from crmsync.store import codec
    from crmsync.store.columns import OPP_RAW_COLUMNS
    from crmsync.store.summaries import decode, value_columns

    join = sa.and_(
        history_summaries.c.key == opportunities.c.key, history_summaries.c.version == version
    )
    n = len(OPP_RAW_COLUMNS)
    found: dict[str, tuple[Any, Any]] = {}
    with store.reading("read opportunities") as conn:
        for start in range(0, len(keys), chunk):
            part = list(keys[start : start + chunk])
            stmt = (
                sa.select(*OPP_RAW_COLUMNS, *value_columns(False))
                .select_from(opportunities.outerjoin(history_summaries, join))
                .where(opportunities.c.key.in_(part))
            )
            for row in conn.execute(stmt):
                opp = codec.opportunity_from_raw(row[:n])
                values = row[n:]
                found[opp.key] = (opp, None if values[1] is None else decode(values))
    return found
