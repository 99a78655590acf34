"""The stage stays counted for percentile rules: on a big SQLite store polars unpacks the lists
the helper process reads; the counts are the database's, odd lists included (those go back to
the database, or to the per-deal reader)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmsync.config import load_mapping
from crmsync.store import Store, sqlite_arrow
from crmsync.store import stay_counts as counts_module
from crmsync.store.stay_counts import stay_counts
from crmsync.workflows.readers import summarizer_for

from ..workflows.test_columnar import ROOT, _load
from ..workflows.test_fast_paths import BENCH, NOW


@pytest.fixture
def big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, str, Path]]:
    """A SQLite file store of 400 summarized deals, read by the helper (HELPER_FROM lowered)."""
    monkeypatch.setattr(sqlite_arrow, "HELPER_FROM", 100)
    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")
    path = tmp_path / "crmsync.db"
    store = Store.open(f"sqlite:///{path}")
    _load(store, "sf", list(BENCH.opportunities(400, 3, NOW, mapping.stages)))
    summarizer = summarizer_for(mapping)
    store.refresh_summaries("sf", summarizer)
    try:
        yield store, summarizer.version, path
    finally:
        store.close()
        sqlite_arrow._close_all()


def _sorted(counts: Any) -> Any:
    return sorted(counts, key=lambda c: (c[0] or "", c[1], c[2]))


def _in_the_database(store: Store, version: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as m:
        m.setattr(sqlite_arrow, "HELPER_FROM", 10**9)
        return stay_counts(store, "sf", version, 30)


def test_polars_counts_what_the_database_counts(
    big: tuple[Store, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, version, path = big
    with sqlite3.connect(path) as db:  # stage names JSON escapes, and days past the cap
        db.execute(
            "UPDATE history_summaries SET stays = ? WHERE key IN "
            "(SELECT key FROM history_summaries ORDER BY key LIMIT 3)",
            ('[["n\\u00e9gociation",3.5],["say \\"yes\\"",45.0],["x",-2.7]]',),
        )
    used: list[int] = []
    real = counts_module._count
    monkeypatch.setattr(counts_module, "_count", lambda *a: used.append(1) or real(*a))
    got = stay_counts(store, "sf", version, 30)
    assert used, "polars did not count"
    assert got is not None and len(got) > 20
    assert _sorted(got) == _sorted(_in_the_database(store, version, monkeypatch))
    assert any(c[1] == "négociation" and c[2] == 3 for c in got)  # unescaped
    assert any(c[1] == 'say "yes"' and c[2] == 30 for c in got)  # capped
    assert any(c[1] == "x" and c[2] == 0 for c in got)  # toward zero, then at least 0


def test_a_list_polars_cannot_read_goes_to_the_database(
    big: tuple[Store, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, version, path = big
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE history_summaries SET stays = ? WHERE key = "
            "(SELECT min(key) FROM history_summaries)",
            ('[["qualified",NaN]]',),
        )
    assert stay_counts(store, "sf", version, 30) is None  # the per-deal reader decides then
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE history_summaries SET stays = ? WHERE key = "
            "(SELECT min(key) FROM history_summaries)",
            ('[["qualified",1.5,"extra"]]',),
        )
    got = stay_counts(store, "sf", version, 30)
    assert got is not None
    assert _sorted(got) == _sorted(_in_the_database(store, version, monkeypatch))


def test_a_deal_without_a_summary_is_none(
    big: tuple[Store, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, version, path = big
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM history_summaries WHERE key = (SELECT max(key) FROM opportunities)")
    assert stay_counts(store, "sf", version, 30) is None
    assert _in_the_database(store, version, monkeypatch) is None
