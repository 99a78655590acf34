"""Runs as its own process (`sqlite_arrow.py` starts it): SQLite queries' rows as Arrow, through
the ADBC SQLite driver, so that crmsync's process never holds that driver's SQLite library
beside Python's (sqlite_arrow.py says why).

Serves one request after another: a JSON line on stdin, {"uri", "sql", "rows"}; the answer on
stdout is messages of a kind byte and, but for "D", an 8-byte length and that many bytes:
"B" one record batch (an Arrow IPC stream), "D" done, "E" a one-line error. The query's first
row is a typing row (a non-null value per column, so the driver infers each column's type from
it, not from a first batch that may be all NULL): it is dropped here. No connection is held
between requests. Exits when stdin closes or after `IDLE` seconds without a request. Imports
nothing of crmsync, so it starts fast.
"""

import json
import re
import select
import struct
import sys

IDLE = 600.0


def main() -> int:
    import adbc_driver_sqlite.dbapi as dbapi
    import pyarrow as pa

    out = sys.stdout.buffer
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], IDLE)
        line = sys.stdin.readline() if ready else ""
        if not line:
            return 0
        try:
            request = json.loads(line)
            with dbapi.connect(request["uri"]) as conn, conn.cursor() as cur:
                cur.execute("PRAGMA busy_timeout = 10000")
                cur.fetchall()
                rows = str(int(request["rows"]))
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": rows})
                cur.execute(request["sql"])
                first = True
                for batch in cur.fetch_record_batch():
                    if first:
                        batch, first = batch.slice(1), False
                    if batch.num_rows:
                        sink = pa.BufferOutputStream()
                        with pa.ipc.new_stream(sink, batch.schema) as one:
                            one.write_batch(batch)
                        _send(out, b"B", sink.getvalue().to_pybytes())
            out.write(b"D")
        except BrokenPipeError:
            return 0
        except Exception as e:  # one line for the parent, never a traceback
            said = (str(e).splitlines() or [type(e).__name__])[0]
            said = re.sub(r"^[A-Z_]+: \[SQLite\] ", "", said)  # the ADBC status code: noise
            _send(out, b"E", said[:300].encode())
        out.flush()


def _send(out: object, kind: bytes, data: bytes) -> None:
    out.write(kind + struct.pack("<Q", len(data)) + data)  # type: ignore[attr-defined]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
