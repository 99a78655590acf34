"""A big SQLite read as Arrow batches, from a helper process running the ADBC SQLite driver.

Why a process: Python's sqlite3 turns every value into a Python object (about 60 % of a 100,000
deal columnar plan went there), and the ADBC driver, which hands Arrow straight over, carries a
SQLite library of its own. Two SQLite libraries in one process that open the same database file
break each other's POSIX locks: closing a file drops every lock the process holds on it, and one
library takes itself for the first user of the WAL's shared memory and resets it (a writer died
with SIGBUS in a benchmark). See "Multiple copies of SQLite linked into the same application" in
SQLite's "How To Corrupt An SQLite Database File". In its own process the driver is one more
reader, as any other program would be; it also reads while this process decides.

Starting one costs about a twentieth of a second, so small reads stay on sqlite3 (`HELPER_FROM`),
and a helper is kept for the next read (a running service's next plan) until it has been idle
for ten minutes. A read fails as `HelperFailed`, with the helper's one line.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import queue
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import polars as pl

# At this many deals (`deal_count`) a helper process pays for its start several times over;
# from SPLIT_FROM, a read asked to may be shared by two helpers, taking runs of keys in turn.
HELPER_FROM = 20_000
SPLIT_FROM = 50_000
RUN = 50_000  # deals a helper reads at a time when reads are shared (runs of keys, in turn)
CHILD = Path(__file__).with_name("sqlite_arrow_child.py")
# as the helper says them (sqlite_arrow_child.py)
STARTLESS = "cannot start the SQLite reader: "
READY = b"\x00crmsync-sqlite-reader-1\x00"
MAX_MESSAGE = 1 << 31  # no batch is near this: a bigger length is a garbled answer
_LITERAL = {"text": "''", "float": "0.0", "int": "0"}


class HelperFailed(Exception):
    """The helper's one-line account of what went wrong (the store words it)."""

    @property
    def cannot_start(self) -> bool:
        """The helper could not load its driver: sqlite3 reads instead."""
        return str(self).startswith(STARTLESS)


@functools.cache
def available() -> bool:
    """Whether the ADBC SQLite driver is installed (else sqlite3 reads everything)."""
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None
        for name in ("adbc_driver_manager", "adbc_driver_sqlite", "nanoarrow")
    )


def typed_query(sql: str, names: Sequence[str], kinds: Sequence[str]) -> str:
    """`sql` behind a typing row: one non-null literal per column, of the type the column is
    cast to (`kinds`: text, float or int), so that the driver, which infers a column's type
    from its first batch, never meets a first batch of NULLs (it would take them for integers
    and refuse the text that follows). `arrow_frames` drops that row."""
    first = ", ".join(f'{_LITERAL[k]} AS "{n}"' for n, k in zip(names, kinds, strict=True))
    return f"SELECT {first} UNION ALL SELECT * FROM ({sql})"


def arrow_frames(path: str, sql: str, *, rows: int) -> Iterator[pl.DataFrame]:
    """The rows of `sql` (from `typed_query`) over the database file `path`, as frames of
    about `rows` rows each. HelperFailed carries the helper's one line."""
    import polars as pl
    import pyarrow as pa

    uri = f"file:{quote(str(Path(path).resolve()))}?mode=rw"  # never creates a database
    request = (json.dumps({"uri": uri, "sql": sql, "rows": rows}) + "\n").encode()
    helper, kind = _started(request)
    # A thread takes the helper's messages off the pipe as they come, so that the helper reads
    # the next rows while this process works on the last ones (else it waits on a full pipe).
    messages: queue.Queue[tuple[bytes, bytes | HelperFailed]] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def pump(kind: bytes) -> None:
        try:
            while not stop.is_set():
                if kind not in (b"B", b"E"):  # "D", or the output ended (b"") or garbled
                    messages.put((kind, b""))
                    return
                data = helper.payload()
                messages.put((kind, data))
                if kind == b"E":
                    return
                kind = helper.kind()
        except HelperFailed as e:
            messages.put((b"", e))
        except (OSError, ValueError):  # the pipe closed under it: this read was abandoned
            messages.put((b"", HelperFailed("the read was stopped")))
        except BaseException as e:  # never a silent end: the reader would wait for good
            messages.put((b"", HelperFailed(f"the reading process's answer broke off: {e!r}")))

    reader = threading.Thread(target=pump, args=(kind,), name="sqlite-arrow", daemon=True)
    reader.start()
    finished = False
    typing_row = True
    try:
        while True:
            kind, data = messages.get()
            if isinstance(data, HelperFailed):
                raise data
            if kind != b"B":
                break
            frame = pl.from_arrow(_checked(pa.ipc.open_stream(data).read_next_batch()))
            assert isinstance(frame, pl.DataFrame)
            if typing_row:  # the query's first row only settled the column types
                frame, typing_row = frame.slice(1), False
            if frame.height:
                yield frame
        if kind == b"E":
            finished = True  # the helper is still good: it said what went wrong
            raise HelperFailed(_first_line(data.decode("utf-8", "replace")))
        if kind != b"D":
            raise HelperFailed(helper.died())
        finished = True
    finally:
        stop.set()
        if not finished:  # stopped early, or broken: its answer is half read
            helper.close()
            while reader.is_alive():  # the pump may wait on a full queue
                with contextlib.suppress(queue.Empty):
                    messages.get(timeout=0.05)
        reader.join()
        if finished:
            _give(helper)


def _checked(batch: Any) -> Any:
    """The batch, its text checked to be UTF-8 (a tenth of a millisecond a batch). SQLite keeps
    whatever bytes a program wrote as text, and polars meets a bad one with a panic, which no
    `except Exception` catches, where sqlite3 raises."""
    import pyarrow as pa

    try:
        batch.validate(full=True)
    except pa.ArrowInvalid as e:
        raise HelperFailed(_not_utf8(batch, str(e))) from None
    return batch


def _not_utf8(batch: Any, said: str) -> str:
    """Which column of which deal holds the bad text, never the text itself."""
    import re

    found = re.search(r"column (\d+).*UTF8.*string index (\d+)", said)
    if found is None:
        first = (said.splitlines() or [""])[0][:200]
        return f"the reading process sent a damaged batch ({first})"
    column, row = int(found[1]), int(found[2])
    name = batch.schema.names[column]
    key = batch.column(0)[row].as_py() if column and batch.schema.names[0] == "key" else None
    where = f" of deal {key}" if key else ""
    return f"{name}{where} holds text that is not UTF-8 (written by another program?)"


class _Helper:
    """One helper process: a request in, messages out (sqlite_arrow_child.py)."""

    def __init__(self) -> None:
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the helper)
        self.proc = subprocess.Popen(
            [sys.executable, "-P", str(CHILD)],  # -P: not the store package's own modules
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            start_new_session=True,  # a Ctrl-C in the terminal is the parent's, not the helper's
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.ready = False

    def send(self, request: bytes) -> bool:
        self.errors.seek(0)
        self.errors.truncate()  # what it says now is about this request
        try:
            self.stdin.write(request)
            self.stdin.flush()
            return True
        except (BrokenPipeError, ValueError):  # it has gone (its idle time is up)
            return False

    def kind(self) -> bytes:
        if not self.ready:
            self._wait_ready()
        return self.stdout.read(1)

    def _wait_ready(self) -> None:
        """Skip what the process printed before its first word (a site hook's print, say)."""
        seen = b""
        while not seen.endswith(READY):
            byte = self.stdout.read(1)
            if not byte or len(seen) > 1 << 20:
                raise HelperFailed(self.died())
            seen = seen[-len(READY) :] + byte
        self.ready = True

    def payload(self) -> bytes:
        head = self.stdout.read(8)
        if len(head) != 8:
            raise HelperFailed(self.died())
        (size,) = struct.unpack("<Q", head)
        if size > MAX_MESSAGE:
            raise HelperFailed(f"the reading process sent a garbled answer ({size} bytes)")
        data = self.stdout.read(size)
        if len(data) != size:
            raise HelperFailed(self.died())
        return data

    def died(self) -> str:
        """What the helper said before its output ended, or its exit status."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.errors.seek(max(0, self.errors.seek(0, 2) - 4000))
        lines = self.errors.read().decode("utf-8", "replace").strip().splitlines()
        said = lines[-1][:300] if lines else ""  # a traceback's last line says what it was
        self.close()
        return said or f"the reading process ended (exit status {self.proc.returncode})"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.stdin, self.stdout, self.errors):
            with contextlib.suppress(OSError):
                f.close()


_lock = threading.Lock()
_idle: list[_Helper] = []
KEEP = 3  # idle helpers kept for the next reads (each about 40 MB, gone after its idle time)


def _started(request: bytes) -> tuple[_Helper, bytes]:
    """A helper that has taken `request`, and its first message's kind. A kept helper may have
    ended (idle too long): then a new one is started, once."""
    with _lock:
        _drop_dead()
        helper = _idle.pop() if _idle else None
    if helper is not None:
        if helper.proc.poll() is None and helper.send(request):
            kind = helper.kind()
            if kind:
                return helper, kind
        helper.close()
    helper = _Helper()
    if not helper.send(request):
        raise HelperFailed(helper.died())
    return helper, helper.kind()


def spare() -> None:
    """One idle helper started ahead of its read (it starts up while the caller waits for its
    turn), unless one is idle already."""
    with _lock:
        _drop_dead()
        if not _idle:
            _idle.append(_Helper())


def _drop_dead() -> None:
    """Idle helpers whose idle time ran out: waited for (no defunct process), and gone."""
    for gone in [h for h in _idle if h.proc.poll() is not None]:
        _idle.remove(gone)
        gone.close()


def _give(helper: _Helper) -> None:
    with _lock:
        _drop_dead()
        if len(_idle) < KEEP and helper.proc.poll() is None:
            _idle.append(helper)
            return
    helper.close()


@atexit.register
def _close_all() -> None:
    with _lock:
        while _idle:
            _idle.pop().close()


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def deal_count(conn: Any, connection: str) -> int:
    """How many deals the connection has stored, deleted ones too: read from the index on
    (connection, key) alone, a few milliseconds at 100,000 deals (counting live ones only reads
    every row, ten times longer). It only sizes the read: deleted deals are usually few, and a
    connection with many only has helpers start for fewer live deals than they pay for."""
    return int(conn.execute(count_statement(connection)).scalar_one())


def count_statement(connection: str) -> Any:
    """`deal_count`'s statement (a test checks SQLite's plan for it)."""
    from sqlalchemy import func, select

    from crmsync.store.schema import opportunities

    return select(func.count()).where(opportunities.c.connection == connection)


def split_keys(conn: Any, connection: str, deals: int, readers: int) -> list[str]:
    """Keys that cut the connection's `deals` (as `deal_count` counts them) into runs of equal
    size, at most `RUN` deals and at least one run per reader, which `readers` helpers read in
    turn (none when one reader reads, or when there are too few deals for a second one to pay).
    Each cut is found in the index on (connection, key) from the one before: one pass over the
    index in all."""
    from sqlalchemy import select

    from crmsync.store.schema import opportunities

    if readers < 2 or deals < SPLIT_FROM:
        return []
    runs = max(readers, -(-deals // RUN))
    size = -(-deals // runs)  # runs of about equal size, RUN at most
    keys: list[str] = []
    for _ in range(1, runs):
        stmt = select(opportunities.c.key).where(opportunities.c.connection == connection)
        skip = size  # the first run's keys, then the next run's after the last cut
        if keys:
            stmt, skip = stmt.where(opportunities.c.key > keys[-1]), size - 1
        found = conn.execute(stmt.order_by(opportunities.c.key).offset(skip).limit(1)).scalar()
        if found is None:  # deleted meanwhile: fewer runs
            break
        keys.append(str(found))
    return keys
