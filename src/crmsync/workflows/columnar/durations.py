"""The first pass of a percentile rule on columns: every deal's completed stays (as the kept
history summaries list them) counted per (pipeline, stage, whole day) by the database, without
a Python step per deal or per stay, and memory that does not grow with the deals."""

from __future__ import annotations

from crmsync.store import Store
from crmsync.store.columnar import stay_counts
from crmsync.workflows.percentiles import StageDurations


def durations_on_columns(store: Store, connection: str, version: str) -> StageDurations | None:
    """`readers.stage_durations_from_summaries` in the database; None when a deal has no
    current summary or a stays list is not plain (the per-deal reader then decides)."""
    durations = StageDurations()
    counts = stay_counts(store, connection, version, durations.cap_days)
    if counts is None:
        return None
    for pipeline, stage, bucket, count in sorted(counts, key=lambda c: (c[0] or "", c[1], c[2])):
        durations.add_count(pipeline, stage, bucket, count)
    return durations
