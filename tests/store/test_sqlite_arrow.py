"""The SQLite helper process (store/sqlite_arrow.py): the same frames as sqlite3's rows, a
failure as the store's one line, no process left behind, and a kept helper reused."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crmsync.store import Store, in_turn, sqlite_arrow
from crmsync.store.columnar import read_frames
from crmsync.store.errors import StoreError

from .builders import NOW, OBJ, opp

NAMES = ["amount", "close_date", "is_closed", "last_activity_at", "next_step", "probability"]
NAMES += ["owner_active", "s_stage_entered_at", "s_close_date_push_count", "stage_canonical"]


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[Store]:
    """A SQLite file store of 60 deals whose first 40 have no next step, probability or
    activity (a first batch of NULLs, as a field mapped late leaves it)."""
    store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")
    deals = [
        opp(
            f"006{i:04d}",
            next_step=None if i < 40 else f"call back #{i}",
            probability=None if i < 40 else i + 0.5,
            last_activity_at=None if i < 40 else NOW - timedelta(hours=i),
            amount=Decimal(f"{i}.25"),
            owner_active=None if i < 40 else i % 2 == 0,
        )
        for i in range(60)
    ]
    store.apply_batch("sf", OBJ, opportunities=deals, observed_at=NOW)
    try:
        yield store
    finally:
        store.close()
        sqlite_arrow._close_all()


def _read(store: Store, *, helper: bool, batch: int = 50) -> list[pl.DataFrame]:
    old = sqlite_arrow.HELPER_FROM
    sqlite_arrow.HELPER_FROM = 0 if helper else 10**9
    try:
        return list(read_frames(store, "sf", "v1", NAMES, batch_size=batch))
    finally:
        sqlite_arrow.HELPER_FROM = old


def _helpers() -> list[int]:
    return [h.proc.pid for h in sqlite_arrow._idle]


def _children() -> list[int]:
    """This process's child processes still there (zombies too: none may be left unwaited)."""
    import os

    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            found.append(int(stat.parent.name))
    return found


def test_the_helper_reads_what_sqlite3_reads(
    file_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same frames, column for column and type for type, though the driver sees batches of 8
    rows whose first ones are all NULL (the typing row settles each column's type)."""
    monkeypatch.setattr("crmsync.store.columnar.FETCH", 4)  # the helper's batches: 8 rows
    rows = _read(file_store, helper=False)
    arrow = _read(file_store, helper=True)
    assert [f.height for f in arrow] == [50, 10]
    assert_frame_equal(pl.concat(arrow), pl.concat(rows))
    whole = pl.concat(arrow)
    assert whole["next_step"].null_count() == 40 and whole["next_step"][-1] == "call back #59"
    assert whole["owner_active"].dtype == pl.Boolean and whole["probability"][-1] == 59.5


def test_the_helper_is_kept_and_replaced_when_gone(file_store: Store) -> None:
    _read(file_store, helper=True)
    (first,) = _helpers()
    _read(file_store, helper=True)
    assert _helpers() == [first]  # the same process served the second read
    sqlite_arrow._idle[0].proc.kill()  # as when its idle time is up
    sqlite_arrow._idle[0].proc.wait()
    assert pl.concat(_read(file_store, helper=True)).height == 60
    assert len(_helpers()) == 1 and _helpers() != [first]


def test_a_read_stopped_early_leaves_no_helper_behind(file_store: Store) -> None:
    sqlite_arrow.HELPER_FROM = 0
    try:
        frames = read_frames(file_store, "sf", "v1", NAMES, batch_size=10)
        next(frames)
        frames.close()  # the rest never read: that helper is stopped, not kept
    finally:
        sqlite_arrow.HELPER_FROM = 20_000
    assert _helpers() == []
    assert pl.concat(_read(file_store, helper=True)).height == 60


def test_a_damaged_store_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")
    store.apply_batch("sf", OBJ, opportunities=[opp("006A")], observed_at=NOW)
    store.close()
    for left in tmp_path.glob("crmsync.db-*"):
        left.unlink()
    with open(tmp_path / "crmsync.db", "r+b") as f:  # the header survives, the pages do not
        f.seek(100)
        f.write(b"\xff" * 8000)
    # straight to the helper (counting the deals would meet the damage first, in sqlite3)
    monkeypatch.setattr("crmsync.store.columnar.helper_deals", lambda *_: 1)
    try:
        with pytest.raises(StoreError) as caught:
            list(read_frames(store, "sf", "v1", NAMES, batch_size=10))
    finally:
        sqlite_arrow._close_all()
    message = str(caught.value)
    assert "\n" not in message and f"sqlite:///{tmp_path}" in message, message
    assert "read opportunities failed" in message, message
    assert "malformed" in message or "not a database" in message, message


def test_the_helper_failing_says_what_it_said(file_store: Store) -> None:
    """A query the driver refuses comes back as the helper's one line, and the helper, which
    said so cleanly, is kept for the next read."""
    with pytest.raises(sqlite_arrow.HelperFailed, match="no such table: nowhere"):
        list(sqlite_arrow.arrow_frames(_path(file_store), "SELECT * FROM nowhere", rows=10))
    (kept,) = _helpers()
    frames = sqlite_arrow.arrow_frames(
        _path(file_store), "SELECT 1 AS a UNION ALL SELECT 2", rows=5
    )
    assert pl.concat(list(frames))["a"].to_list() == [2]  # the typing row dropped
    assert _helpers() == [kept]


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    gone = tmp_path / "nowhere.db"
    with pytest.raises(sqlite_arrow.HelperFailed):
        list(sqlite_arrow.arrow_frames(str(gone), "SELECT 1 AS a", rows=5))
    sqlite_arrow._close_all()
    assert not gone.exists()


def test_small_stores_stay_on_sqlite3(file_store: Store) -> None:
    _read(file_store, helper=False)
    assert _helpers() == []


def _path(store: Store) -> str:
    import sqlalchemy as sa

    return sa.make_url(store.url).database or ""


def _site_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Code every new Python process runs first (a sitecustomize on PYTHONPATH)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(code)
    monkeypatch.setenv("PYTHONPATH", str(hook))


def test_a_print_in_the_helper_does_not_break_its_answers(
    file_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Output the helper did not mean (a site hook's print at start, before its first word)
    is skipped, not read as an answer: a garbled answer would hang or crash the read."""
    _site_hook(tmp_path, monkeypatch, "print('Bad things happen ' * 40)\n")
    rows = _read(file_store, helper=False)
    assert_frame_equal(pl.concat(_read(file_store, helper=True)), pl.concat(rows))


def test_a_helper_without_its_driver_reads_through_sqlite3(
    file_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken install (the helper cannot load nanoarrow) makes reads slower, not failed:
    sqlite3 reads them, and the log says why once per read."""
    from structlog.testing import capture_logs

    _site_hook(tmp_path, monkeypatch, "")
    broken = tmp_path / "hook" / "nanoarrow"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('this nanoarrow is broken')\n")
    rows = _read(file_store, helper=False)
    with capture_logs() as logs:
        got = _read(file_store, helper=True)
    assert_frame_equal(pl.concat(got), pl.concat(rows))
    (said,) = [e for e in logs if e["event"] == "store.sqlite_reader_unavailable"]
    assert said["reason"] == (
        "cannot start the SQLite reader: ImportError: this nanoarrow is broken"
    ), said


def test_ctrl_c_in_the_terminal_leaves_the_read_to_the_parent(file_store: Store) -> None:
    """SIGINT and SIGTERM sent to the helper (a terminal's Ctrl-C, a service manager's stop)
    do not end it mid-read: the parent finishes what it is doing and closes it."""
    import os
    import signal

    _read(file_store, helper=True)
    (helper,) = sqlite_arrow._idle
    os.kill(helper.proc.pid, signal.SIGINT)
    os.kill(helper.proc.pid, signal.SIGTERM)
    assert pl.concat(_read(file_store, helper=True)).height == 60
    assert _helpers() == [helper.proc.pid]


def test_an_expired_helper_is_not_left_defunct(file_store: Store) -> None:
    _read(file_store, helper=True)
    (gone,) = sqlite_arrow._idle
    gone.proc.kill()
    import time

    for _ in range(100):  # until the kernel has ended it (not yet waited for)
        if Path(f"/proc/{gone.proc.pid}/status").read_text().find("zombie") >= 0:
            break
        time.sleep(0.01)
    sqlite_arrow._give(sqlite_arrow._Helper())  # any later hand-back sweeps the pool
    assert gone not in sqlite_arrow._idle and gone.proc.returncode is not None


def test_uri_store_urls_stay_on_sqlite3(tmp_path: Path) -> None:
    """A SQLite URL in URI form (`?uri=true`, read-only modes) is sqlite3's to read."""
    store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")
    store.apply_batch("sf", OBJ, opportunities=[opp("006A")], observed_at=NOW)
    store.close()
    uri = Store.open(f"sqlite:///file:{tmp_path / 'crmsync.db'}?uri=true")
    sqlite_arrow.HELPER_FROM = 0
    try:
        assert pl.concat(list(read_frames(uri, "sf", "v1", NAMES, batch_size=10))).height == 1
    finally:
        sqlite_arrow.HELPER_FROM = 20_000
        uri.close()
    assert _helpers() == []


def test_two_helpers_read_what_one_reads(
    file_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read shared by two helpers (a run of keys each, read at once) gives the same frames,
    in key order."""
    monkeypatch.setattr(sqlite_arrow, "SPLIT_FROM", 0)
    monkeypatch.setattr(sqlite_arrow, "RUN", 15)
    monkeypatch.setattr(sqlite_arrow, "HELPER_FROM", 0)
    rows = _read(file_store, helper=False)
    shared = list(read_frames(file_store, "sf", "v1", NAMES, batch_size=25, readers=2))
    assert [f.height for f in shared] == [25, 25, 10]
    assert_frame_equal(pl.concat(shared), pl.concat(rows))
    assert len(_helpers()) == 2  # both kept for the next read


def test_a_shared_read_stopped_early_leaves_nothing_behind(
    file_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    monkeypatch.setattr(sqlite_arrow, "SPLIT_FROM", 0)
    monkeypatch.setattr(sqlite_arrow, "RUN", 15)
    monkeypatch.setattr(sqlite_arrow, "HELPER_FROM", 0)
    frames = read_frames(file_store, "sf", "v1", NAMES, batch_size=5, readers=2)
    next(frames)
    frames.close()
    # the helpers reading were stopped; one that had finished its run may be kept, idle
    assert len(_helpers()) <= 1 and sorted(_children()) == sorted(_helpers())
    assert not [t for t in threading.enumerate() if t.name.startswith("sqlite-arrow")]
    assert pl.concat(list(read_frames(file_store, "sf", "v1", NAMES, batch_size=50))).height == 60


def test_the_read_is_sized_from_the_index_deleted_deals_and_all(
    file_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deals are counted (and the key runs cut) from the index on (connection, key) alone,
    deleted ones included: counting live ones read every row, ten times longer. A shared read
    still gives only the live deals, as sqlite3 does."""
    file_store.apply_batch(
        "sf", OBJ, deleted_ids=[f"006{i:04d}" for i in range(0, 60, 3)], observed_at=NOW
    )
    with file_store.reading("count") as conn:
        assert sqlite_arrow.deal_count(conn, "sf") == 60
        assert sqlite_arrow.deal_count(conn, "hs") == 0
        sql = str(
            sqlite_arrow.count_statement("sf").compile(compile_kwargs={"literal_binds": True})
        )
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "COVERING INDEX ix_opportunities_connection_key" in plan
    monkeypatch.setattr(sqlite_arrow, "SPLIT_FROM", 0)
    monkeypatch.setattr(sqlite_arrow, "RUN", 15)
    monkeypatch.setattr(sqlite_arrow, "HELPER_FROM", 0)
    rows = pl.concat(list(read_frames(file_store, "sf", "v1", NAMES, batch_size=50)))
    shared = list(read_frames(file_store, "sf", "v1", NAMES, batch_size=25, readers=2))
    assert [f.height for f in shared] == [25, 15]
    assert_frame_equal(pl.concat(shared), rows)


@pytest.mark.parametrize("helper", [True, False])
def test_text_that_is_not_utf8_is_one_line_naming_the_column(
    file_store: Store, helper: bool
) -> None:
    """Bytes another program wrote into a text column: sqlite3 raises its own error, and polars
    met them with a panic (which no `except Exception` catches); both are the store's one line,
    naming the column (and the deal, where the helper read), never the bytes."""
    import sqlite3

    path = file_store.url.split(":///", 1)[1]
    with sqlite3.connect(path) as raw:
        raw.execute(
            "UPDATE opportunities SET next_step = CAST(X'73656372657420FF' AS TEXT) "
            "WHERE native_id = '0060045'"
        )
    with pytest.raises(StoreError) as caught:
        _read(file_store, helper=helper)
    said = str(caught.value)
    assert "\n" not in said and "secret" not in said
    assert said.startswith(f"store {file_store.safe_url}: read opportunities failed: ")
    if helper:
        assert said.endswith(
            "next_step of deal sf:0060045 holds text that is not UTF-8 "
            "(written by another program?)"
        )
    else:
        assert said.endswith("Could not decode to UTF-8 column 'next_step'")


def test_runs_are_read_two_at_a_time_in_turn_and_handed_on_in_order() -> None:
    """Twelve runs of keys: at most two reads at once (whatever the store's size, so memory
    stays flat), each place taking the next run in turn, the frames in the order given."""
    import threading

    lock = threading.Lock()
    running: list[int] = []
    most = 0

    def run(i: int) -> Iterator[pl.DataFrame]:
        nonlocal most
        with lock:
            running.append(i)
            most = max(most, len(running))
        try:
            for part in range(6):  # more than a read may hold ahead: it waits to be taken
                yield pl.DataFrame({"run": [i], "part": [part]})
        finally:
            with lock:
                running.remove(i)

    readers = [lambda i=i: run(i) for i in range(12)]
    out = pl.concat(list(in_turn.in_order(readers)))
    assert out.rows() == [(i, part) for i in range(12) for part in range(6)]
    assert most == 2 and not running


@pytest.mark.parametrize(
    ("run", "sizes"), [(25, [20, 20, 20]), (100, [30, 30]), (16, [15, 15, 15, 15])]
)
def test_runs_of_keys_are_even_and_at_most_run_deals(
    file_store: Store, monkeypatch: pytest.MonkeyPatch, run: int, sizes: list[int]
) -> None:
    """Sixty deals: runs of at most RUN deals, about equal, and at least one per reader."""
    import bisect
    import itertools

    monkeypatch.setattr(sqlite_arrow, "SPLIT_FROM", 0)
    monkeypatch.setattr(sqlite_arrow, "RUN", run)
    keys = sorted(f"sf:006{i:04d}" for i in range(60))
    with file_store.reading("split") as conn:
        cuts = sqlite_arrow.split_keys(conn, "sf", 60, 2)
        assert sqlite_arrow.split_keys(conn, "sf", 60, 1) == []
    at = [0, *(bisect.bisect_left(keys, c) for c in cuts), len(keys)]
    assert [b - a for a, b in itertools.pairwise(at)] == sizes


def test_the_second_place_starts_once_the_other_read_is_done() -> None:
    """With `later` (the stage stays being counted by another helper meanwhile), the second
    place's first run waits until it returns; the first place reads on, and all comes in order."""
    import threading

    counted = threading.Event()
    started: list[int] = []

    def run(i: int) -> Iterator[pl.DataFrame]:
        started.append(i)
        yield pl.DataFrame({"run": [i]})

    readers = [lambda i=i: run(i) for i in range(4)]
    frames = in_turn.in_order(readers, later=counted.wait)
    assert next(frames)["run"].item() == 0
    time.sleep(0.2)  # time enough for the second place to start, were it free to
    assert 1 not in started and 3 not in started
    counted.set()
    assert [f["run"].item() for f in frames] == [1, 2, 3]


def test_a_read_beside_another_starts_its_second_helper_while_it_waits(
    file_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the stage stays are counted, a shared read's second helper is started, then
    waits: the same frames, the waiter asked once, and that helper is the one used (two kept,
    not three)."""
    monkeypatch.setattr(sqlite_arrow, "SPLIT_FROM", 0)
    monkeypatch.setattr(sqlite_arrow, "HELPER_FROM", 0)
    monkeypatch.setattr(sqlite_arrow, "RUN", 15)
    rows = _read(file_store, helper=False)
    asked: list[int] = []

    def others_after() -> None:
        asked.append(len(sqlite_arrow._idle))  # the spare one, already there

    shared = list(
        read_frames(
            file_store, "sf", "v1", NAMES, batch_size=50, readers=2, others_after=others_after
        )
    )
    assert_frame_equal(pl.concat(shared), pl.concat(rows))
    assert asked == [1] and len(_helpers()) == 2


def _within(seconds: float, work: Callable[[], object]) -> object:
    """`work`'s result (or what it raised), failing the test if it takes longer (a hang)."""
    import threading

    out: list[object] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as e:
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "hung"
    return out[0]


def _runs(n: int, started: list[int] | None = None) -> list[Callable[[], Iterator[pl.DataFrame]]]:
    def run(i: int) -> Iterator[pl.DataFrame]:
        if started is not None:
            started.append(i)
        yield pl.DataFrame({"run": [i]})

    return [lambda i=i: run(i) for i in range(n)]


def test_a_crash_while_waiting_or_starting_a_read_is_raised_not_hung() -> None:
    """`later` crashing with what is not an Exception (a library's panic), or a read failing
    as it is made: raised where its frames would come, no thread left behind."""
    import threading

    from polars.exceptions import PanicException

    def panics() -> None:
        raise PanicException("the stays count crashed")

    raised = _within(5, lambda: list(in_turn.in_order(_runs(4), later=panics)))
    assert isinstance(raised, PanicException)

    def unmade() -> Iterator[pl.DataFrame]:
        raise OSError(24, "Too many open files")

    readers = [*_runs(3), unmade]
    raised = _within(5, lambda: list(in_turn.in_order(readers)))
    assert isinstance(raised, OSError)
    time.sleep(0.1)
    assert not [t for t in threading.enumerate() if t.name == "sqlite-arrow-read"]


def test_stopping_early_does_not_wait_for_a_place_still_waiting() -> None:
    """A read stopped (the plan failed, Ctrl-C) while the second place waits on `later`: the
    stop is at once, and that place reads nothing once `later` returns."""
    import threading

    counted = threading.Event()
    started: list[int] = []
    frames = in_turn.in_order(_runs(4, started), later=counted.wait)
    assert next(frames)["run"].item() == 0

    def close() -> float:
        began = time.monotonic()
        frames.close()
        return time.monotonic() - began

    assert _within(2, close) < 1  # type: ignore[operator]
    counted.set()
    time.sleep(0.2)
    assert 1 not in started and 3 not in started
