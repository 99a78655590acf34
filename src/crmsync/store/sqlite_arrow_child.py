"""Runs as its own process (`sqlite_arrow.py` starts it): SQLite queries' rows as Arrow, through
the ADBC SQLite driver, so that crmsync's process never holds that driver's SQLite library
beside Python's (sqlite_arrow.py says why).

Serves one request after another: a JSON line on stdin, {"uri", "sql", "rows"}; the answer on
stdout is messages of a kind byte and, but for "D", an 8-byte length and that many bytes:
"B" one record batch (an Arrow IPC stream), "D" done, "E" a one-line error. No connection is
held between requests. Exits when stdin closes or after `IDLE` seconds without a request.
Imports only the ADBC driver and nanoarrow (not pyarrow, nothing of crmsync): it starts in a few
hundredths of a second and holds some 40 MB.
"""

import json
import re
import select
import struct
import sys
from collections.abc import Iterator
from typing import Any

IDLE = 600.0


def main() -> int:
    import io

    import adbc_driver_manager
    import adbc_driver_sqlite
    from nanoarrow.ipc import StreamWriter

    out = sys.stdout.buffer
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], IDLE)
        line = sys.stdin.readline() if ready else ""
        if not line:
            return 0
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
            said = re.sub(r"^[A-Z_]+: \[SQLite\] ", "", said)  # the ADBC status code: noise
            _send(out, b"E", said[:300].encode())
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


def _send(out: object, kind: bytes, data: bytes) -> None:
    out.write(kind + struct.pack("<Q", len(data)) + data)  # type: ignore[attr-defined]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
