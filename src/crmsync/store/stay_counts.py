"""Every live deal's completed stage stays (as its current history summary lists them) counted
per (pipeline, stage, whole days): the first pass of a percentile rule, a few hundred rows out
whatever the number of deals.

The database counts them (jsonb on PostgreSQL, json_each on SQLite). On a big SQLite store that
was the longest part of a plan (0.35-0.45 s per 100,000 deals, unpacking JSON in SQLite): there
the lists come as Arrow from the helper process (sqlite_arrow.py) and polars unpacks and counts
them, a batch at a time, when every list is plain (a [stage, days] pair per stay); anything else
is counted by the database, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmsync.store.schema import history_summaries, opportunities

if TYPE_CHECKING:
    import polars as pl

    from crmsync.store.store import Store

Counts = list[tuple[str | None, str, int, int]]


class _NotPlain(Exception):
    """A stays list not of [stage, days] pairs: the database counts them."""


def stay_counts(
    store: Store, connection: str, version: str, cap: int
) -> list[tuple[str | None, str, int, int]] | None:
    """Every live deal's completed stays counted per (pipeline, stage, whole days toward zero,
    at least 0, at most `cap`). None when a live deal has no current summary, or a stays list
    is not plain JSON numbers (the caller reads them one by one)."""
    join = sa.and_(
        history_summaries.c.key == opportunities.c.key, history_summaries.c.version == version
    )
    live = sa.and_(opportunities.c.connection == connection, opportunities.c.deleted.is_(False))
    backend = sa.make_url(store.url).get_backend_name()
    if backend == "sqlite":
        from crmsync.store.columnar import helper_deals

        if helper_deals(store, sa.make_url(store.url), connection):
            try:
                return _counted_from_arrow(store, connection, version, cap)
            except _NotPlain:
                pass  # the database reads the lists whole
    stage: Any
    days: Any
    if backend == "sqlite":
        each = sa.func.json_each(history_summaries.c.stays).table_valued("value").alias("stay")
        stage = sa.func.json_extract(each.c.value, "$[0]")
        days = sa.func.json_extract(each.c.value, "$[1]")
        whole = sa.cast(days, sa.Integer)  # SQLite truncates toward zero, as int() does
    else:
        each = sa.func.jsonb_array_elements(history_summaries.c.stays).table_valued("value")
        each = each.alias("stay")
        stage = each.c.value.op("->>")(0)
        days = sa.cast(each.c.value.op("->>")(1), sa.Float)
        whole = sa.cast(sa.func.trunc(days), sa.BigInteger)
    bucket = sa.func.least if backend != "sqlite" else sa.func.min
    most = sa.func.greatest if backend != "sqlite" else sa.func.max
    bucketed = bucket(most(whole, 0), cap).label("bucket")
    absent = history_summaries.c.key.is_(None).label("absent")  # a deal without a summary
    stmt = (
        sa.select(absent, opportunities.c.pipeline, stage.label("stage"), bucketed, sa.func.count())
        .select_from(opportunities.outerjoin(history_summaries, join).outerjoin(each, sa.true()))
        .where(live)
        .group_by(absent, opportunities.c.pipeline, stage, bucketed)
    )
    try:
        with store.reading("count stage stays") as conn:
            if backend != "sqlite":  # its JIT compiles this for 0.1-0.2 s per run, to no gain
                conn.exec_driver_sql("SET LOCAL jit = off")
            rows = conn.execute(stmt).all()
        if any(row[0] for row in rows):
            return None
        return [(p, str(st), int(b), int(n)) for _, p, st, b, n in rows if st is not None]
    except Exception:  # a NaN in a stays list is not JSON to the database: read them in Python
        return None


def _counted_from_arrow(store: Store, connection: str, version: str, cap: int) -> Counts | None:
    """The counts from the lists read as Arrow text by the SQLite helper and unpacked by polars;
    None when a live deal has no current summary; _NotPlain when a list is not plain."""
    import polars as pl
    from sqlalchemy.dialects import sqlite

    from crmsync.store import sqlite_arrow
    from crmsync.store.columnar import sql_text
    from crmsync.store.errors import said_error

    join = sa.and_(
        history_summaries.c.key == opportunities.c.key, history_summaries.c.version == version
    )
    stmt = (
        sa.select(
            sa.cast(opportunities.c.pipeline, sa.Text).label("pipeline"),
            sa.cast(history_summaries.c.stays, sa.Text).label("stays"),
            sa.cast(history_summaries.c.key.is_(None), sa.Integer).label("absent"),
        )
        .select_from(opportunities.outerjoin(history_summaries, join))
        .where(opportunities.c.connection == connection, opportunities.c.deleted.is_(False))
    )
    names = ["pipeline", "stays", "absent"]
    sql = sqlite_arrow.typed_query(sql_text(stmt, sqlite.dialect()), names, ["text", "text", "int"])
    path = sa.make_url(store.url).database or ""
    # Python counts, not frames: a frame of a batch's counts holds views of that batch's text
    # (a million deals' stays kept 200 MB alive that way)
    total: dict[tuple[str | None, str, int], int] = {}
    try:
        for frame in sqlite_arrow.arrow_frames(path, sql, rows=10_000):
            if frame["absent"].cast(pl.Boolean).any():
                return None
            for pipeline, stage, bucket, n in _count(frame, cap).iter_rows():
                key = (pipeline, stage, int(bucket))
                total[key] = total.get(key, 0) + int(n)
    except sqlite_arrow.HelperFailed as e:
        if e.cannot_start:
            raise _NotPlain from e  # the database counts them
        raise said_error(f"store {store.safe_url}: count stage stays failed: {e}", str(e)) from e
    return [(p, st, b, n) for (p, st, b), n in total.items()]


def _count(frame: pl.DataFrame, cap: int) -> pl.DataFrame:
    """One batch's stays per (pipeline, stage, bucket): whole days toward zero, then within
    0..cap, as the database's CAST and min/max count them."""
    import polars as pl

    try:
        lists = frame["stays"].str.json_decode(dtype=pl.List(pl.List(pl.String)))
    except Exception as e:  # not JSON to polars (a NaN, say)
        raise _NotPlain from e
    stays = frame.select("pipeline", lists.alias("stay")).explode("stay")
    stays = stays.filter(pl.col("stay").is_not_null())
    if not stays.select((pl.col("stay").list.len() == 2).all()).item():
        raise _NotPlain
    days = pl.col("stay").list.get(1).cast(pl.Float64, strict=False)
    counted = stays.select(
        "pipeline",
        pl.col("stay").list.get(0).alias("stage"),
        days.alias("days"),
    )
    if counted.select(pl.col("days").is_null() | ~pl.col("days").is_finite()).to_series().any():
        raise _NotPlain  # not a plain number: the database says what it makes of it
    whole = pl.col("days").cast(pl.Int64, strict=False)  # toward zero, as SQLite's CAST
    return counted.group_by("pipeline", pl.col("stage"), whole.clip(0, cap).alias("bucket")).len(
        "n"
    )
