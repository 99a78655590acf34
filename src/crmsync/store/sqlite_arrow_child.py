"""Runs as its own process (`sqlite_arrow.py` starts it): SQLite queries' rows as Arrow, through
the ADBC SQLite driver, so that crmsync's process never holds that driver's SQLite library
beside Python's (sqlite_arrow.py says why).

Says `READY` first, then serves one request after another: a JSON line on stdin, {"uri",
"sql", "rows"}; the answer is messages of a kind byte and, but for "D", an 8-byte length and
that many bytes: "B" one record batch (an Arrow IPC stream), "D" done, "E" a one-line error.
No connection is held between requests. Ignores SIGINT and SIGTERM (the parent decides); exits
when stdin closes (the parent done or gone) or after `IDLE` seconds without a request.
Imports only the ADBC driver and nanoarrow (not pyarrow, nothing of crmsync): it starts in a
few hundredths of a second and holds some 40 MB.
"""

import json
import re
import select
import struct
import sys
from collections.abc import Iterator
from typing import Any

IDLE = 600.0
READY = b"\x00crmsync-sqlite-reader-1\x00"
STARTLESS = "cannot start the SQLite reader: "  # sqlite_arrow.py reads sqlite3's rows then


def main() -> int:
    import io
    import os
    import signal

    # The parent's Ctrl-C or a service manager's stop is the parent's to handle: this process
    # ends when its stdin closes (the parent done or gone), never in the middle of a read.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The answers go out on a copy of stdout; whatever else prints (a library, a site hook)
    # lands on stderr and cannot break the framing.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    out.write(READY)  # what came before it (a site hook's print) is not an answer
    out.flush()
    try:
        import adbc_driver_manager
        import adbc_driver_sqlite
        from nanoarrow.ipc import StreamWriter
    except Exception as e:  # said for each request: the parent words it once
        first = (str(e).splitlines() or [""])[0]
        broken = f"{STARTLESS}{type(e).__name__}: {first}"
    else:
        broken = ""
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], IDLE)
        line = sys.stdin.readline() if ready else ""
        if not line:
            return 0
        if broken:
            _send(out, b"E", broken[:300].encode())
            out.flush()
            continue
        try:
            request = json.loads(line)
            rows = str(int(request["rows"]))
            with (
                adbc_driver_sqlite.connect(request["uri"]) as db,
                adbc_driver_manager.AdbcConnection(db) as conn,
            ):
                list(_query(conn, "PRAGMA busy_timeout = 10000", {}))  # a commit: wait
                for batch in _query(conn, request["sql"], {"adbc.sqlite.query.batch_rows": rows}):
                    if batch.length:
                        sink = io.BytesIO()
                        with StreamWriter.from_writable(sink) as one:
                            one.write_stream(batch)
                        _send(out, b"B", sink.getvalue())
            out.write(b"D")
        except BrokenPipeError:
            return 0
        except Exception as e:  # one line for the parent, never a traceback
            said = (str(e).splitlines() or [type(e).__name__])[0]
            _send(out, b"E", _plain(said)[:300].encode())
        out.flush()


def _query(conn: Any, sql: str, options: dict[str, str]) -> Iterator[Any]:
    """The query's result, batch by batch, as the driver reads them."""
    import adbc_driver_manager
    import nanoarrow

    with adbc_driver_manager.AdbcStatement(conn) as stmt:
        stmt.set_options(**options)
        stmt.set_sql_query(sql)
        handle, _ = stmt.execute_query()
        yield from nanoarrow.c_array_stream(handle)


def _plain(said: str) -> str:
    """The driver's message without its status code and call names (noise to a reader)."""
    said = re.sub(r"^[A-Z_]+: ", "", said)
    said = re.sub(r"^\[SQLite\] ", "", said)
    said = re.sub(r"^ArrowArrayStream::get_next\(\) failed \(\d+\): ", "", said)
    return re.sub(r"^Failed to prepare query: ", "", said)


def _send(out: object, kind: bytes, data: bytes) -> None:
    out.write(kind + struct.pack("<Q", len(data)) + data)  # type: ignore[attr-defined]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
