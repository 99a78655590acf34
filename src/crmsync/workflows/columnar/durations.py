"""The first pass of a percentile rule on columns: every deal's completed stays (as the kept
history summaries list them) counted per (pipeline, stage, whole day), without a Python step
per deal or per stay."""

from __future__ import annotations

import polars as pl

from crmsync.store import Store
from crmsync.store.columnar import read_frames
from crmsync.workflows.percentiles import StageDurations

BATCH = 100_000


def durations_on_columns(store: Store, connection: str, version: str) -> StageDurations | None:
    """`readers.stage_durations_from_summaries` on columns; None when a deal has no current
    summary or a stays text is not the plain shape (the per-deal reader then decides)."""
    durations = StageDurations()
    cap = durations.cap_days
    parts: list[pl.DataFrame] = []
    for frame in read_frames(store, connection, version, ["pipeline", "s_stays"], batch_size=BATCH):
        if frame["s_version"].null_count():
            return None
        try:  # [[stage, days], ...]: numbers kept as their text, parsed exactly below
            pairs = (
                frame.select(
                    "pipeline",
                    pl.col("s_stays").str.json_decode(pl.List(pl.List(pl.String))).alias("pair"),
                )
                .explode("pair")
                .drop_nulls("pair")
            )
        except pl.exceptions.PolarsError:
            return None  # not the plain shape (a NaN, say): the per-deal reader decides
        if pairs.filter(pl.col("pair").list.len() != 2).height:
            return None
        days = pl.col("pair").list.get(1).cast(pl.Float64, strict=False)
        pairs = pairs.select(
            "pipeline", pl.col("pair").list.get(0).alias("stage"), days.alias("days")
        ).filter(pl.col("days").is_not_null() & pl.col("days").is_finite())
        bucket = pl.col("days").clip(0.0, float(cap)).cast(pl.Int64).alias("bucket")
        parts.append(pairs.group_by("pipeline", "stage", bucket).len())
    if parts:
        total = pl.concat(parts).group_by("pipeline", "stage", "bucket").agg(pl.col("len").sum())
        for pipeline, stage, bucket, count in total.sort("pipeline", "stage", "bucket").iter_rows():
            durations.add_count(pipeline, stage, bucket, count)
    return durations
