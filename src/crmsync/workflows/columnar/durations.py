"""The first pass of a percentile rule on columns: every deal's completed stays (as the kept
history summaries list them) counted per (pipeline, stage, whole day) by the database, without
a Python step per deal or per stay, and memory that does not grow with the deals."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from crmsync.store import Store
from crmsync.store.history import StageSummarizer
from crmsync.store.stay_counts import stay_counts
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.readers import stage_durations, stage_durations_from_summaries


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


def durations_meanwhile(
    store: Store, connection: str, summarizer: StageSummarizer
) -> tuple[StageDurations, Callable[[], None]]:
    """The first pass in a thread of its own while the deals are read: both mostly wait on
    the database, which counts the stays as it sends the deals. The object returned is filled
    once `ready()` returns (which raises what the pass raised); rules may hold it before."""
    filled = StageDurations()

    def fill() -> None:
        found = durations_on_columns(store, connection, summarizer.version)
        if found is None:  # a deal without a current summary, an odd stays list
            found = stage_durations_from_summaries(store, connection, summarizer)
        if found is None:
            found = stage_durations(store, connection, summarizer.canonical_of)
        filled.absorb(found)

    pool = ThreadPoolExecutor(1, thread_name_prefix="crmsync-durations")
    try:
        future = pool.submit(fill)
    finally:
        pool.shutdown(wait=False)
    return filled, future.result
