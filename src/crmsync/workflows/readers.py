"""What an evaluation reads from the store: each deal with its history or its kept summary, and
a pipeline's stage durations. Streams ordered by key are merged, so memory stays flat."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from crmsync.model import Opportunity
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.model.records import HistoryRow, HistorySummary
from crmsync.store import Store
from crmsync.store.history import HistoryLike, StageSummarizer
from crmsync.workflows.derived import STAGE_HISTORY_FIELDS
from crmsync.workflows.percentiles import StageDurations

_Row = TypeVar("_Row", bound=HistoryLike)


class _RowsByKey(Generic[_Row]):
    """History rows ordered by key, handed out one key at a time as a key-ordered stream of
    opportunities passes (keys without an opportunity are skipped): a merge, so neither
    stream is ever held whole."""

    __slots__ = ("_next", "_pending")

    def __init__(self, rows: Iterator[_Row]) -> None:
        self._next = functools.partial(next, rows, None)
        self._pending: _Row | None = self._next()

    def take(self, key: str) -> list[_Row]:
        """The rows of `key`; call with keys in increasing order."""
        pending, advance = self._pending, self._next
        while pending is not None and pending.key < key:
            pending = advance()
        own: list[_Row] = []
        while pending is not None and pending.key == key:
            own.append(pending)
            pending = advance()
        self._pending = pending
        return own


def with_history(store: Store, connection: str) -> Iterator[tuple[Opportunity, list[HistoryRow]]]:
    """Each opportunity with its history rows, by merging two key-ordered streams."""
    rows = _RowsByKey(store.iter_history(connection))
    for opp in store.iter_opportunities(connection):
        yield opp, rows.take(opp.key)


def with_field_history(
    store: Store, connection: str, fields: Sequence[str] | None
) -> Iterator[tuple[Opportunity, Sequence[HistoryLike]]]:
    """`with_history` for the evaluation: only the history rows of `fields` (what the derived
    fields read; none at all when empty), as light tuples."""
    opportunities = store.iter_opportunities(connection)
    if fields is not None and not fields:
        none: tuple[HistoryLike, ...] = ()
        for opp in opportunities:
            yield opp, none
        return
    rows = _RowsByKey(store.iter_history_tuples(connection, fields))
    for opp in opportunities:
        yield opp, rows.take(f"{opp.connection}:{opp.native_id}")  # opp.key, built once


def stage_durations(
    store: Store, connection: str, canonical_of: Callable[[str | None], str | None]
) -> StageDurations:
    """The first pass: each deal's pipeline and stage history, nothing else, into durations."""
    durations = StageDurations()
    rows = _RowsByKey(store.iter_history_tuples(connection, STAGE_HISTORY_FIELDS))
    for key, pipeline in store.iter_opportunity_values(connection, ("key", "pipeline")):
        durations.add_runs(pipeline, rows.take(key), canonical_of)
    return durations


def summarizer_for(mapping: CrmMapping | None) -> StageSummarizer:
    """The history summaries a connection's deals have when synced with `mapping`."""
    return StageSummarizer(None if mapping is None else mapping.stages)


def with_summaries(
    store: Store, connection: str, summarizer: StageSummarizer
) -> Iterator[tuple[Opportunity, Sequence[HistoryLike] | HistorySummary]]:
    """Each live deal with its kept summary, or with its history where it has no current one
    (synced before summaries existed, or with another stage mapping)."""
    for opp, summary in store.iter_summarized(connection, summarizer.version, stays=False):
        yield opp, summary if summary is not None else store.history(opp.key)


def stage_durations_from_summaries(
    store: Store, connection: str, summarizer: StageSummarizer
) -> StageDurations | None:
    """The first pass, from the completed stays the kept summaries list; None as soon as a
    live deal has no current summary (the history is read instead)."""
    durations = StageDurations()
    for pipeline, stays in store.iter_summary_stays(connection, summarizer.version):
        if stays is None:
            return None
        durations.add_stays(pipeline, stays)
    return durations
