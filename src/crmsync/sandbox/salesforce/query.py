"""SOQL over REST: query and queryAll, with server-side cursors paged by `nextRecordsUrl`.

A cursor's next page is rendered in the background while the client reads the current one.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.salesforce.base import SalesforceBase
from crmsync.sandbox.salesforce.soql import Query, SoqlError, parse
from crmsync.sandbox.web import json_bytes, json_response

CURSOR_IDLE_SECONDS = 15 * 60
_BATCH_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.I)


@dataclass
class Cursor:
    """A server-side query cursor: the matching ids and how to render them."""

    query: Query
    ids: list[str]
    version: str
    include_deleted: bool
    batch_size: int
    touched: float = field(default_factory=time.monotonic)
    # the next page, rendered while the client is busy with this one: (offset, size, body)
    ahead: tuple[int, int, Future[bytes]] | None = None


class Cursors:
    """The open cursors by locator key, and the threads that render pages ahead."""

    def __init__(self) -> None:
        self._open: dict[str, Cursor] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self.renderer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sf-render")

    def add(self, cursor: Cursor) -> str:
        """Keep `cursor`; its locator key."""
        with self._lock:
            self._seq += 1
            key = f"01g8d{self._seq:010d}AAA"
            self._open[key] = cursor
        return key

    def get(self, key: str) -> Cursor | None:
        with self._lock:
            return self._open.get(key)

    def close(self, key: str) -> None:
        with self._lock:
            self._open.pop(key, None)

    def expire(self) -> None:
        """Forget cursors idle for longer than Salesforce keeps them."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, c in self._open.items() if now - c.touched > CURSOR_IDLE_SECONDS]:
                del self._open[key]


class QueryRoutes(SalesforceBase):
    """query, queryAll and their next pages."""

    cursors: Cursors

    def on_query(self, request: Request, version: str) -> Response:
        return self._start_query(request, version, include_deleted=False)

    def on_queryAll(self, request: Request, version: str) -> Response:
        return self._start_query(request, version, include_deleted=True)

    def _start_query(self, request: Request, version: str, include_deleted: bool) -> Response:
        soql = request.args.get("q")
        if not soql:
            return self.error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query = parse(soql, today=lambda: self.clock.now().date())
        except SoqlError as e:
            return self.error(400, e.error_code, e.message)
        table = self.org.tables[query.sobject.name]
        with self.org.lock:
            matched = query.run(list(table.values()), self.org.resolve, include_deleted)
        if query.count_only:
            return json_response({"totalSize": len(matched), "done": True, "records": []})
        cursor = Cursor(
            query, [r["Id"] for r in matched], version, include_deleted, batch_size(request, 2000)
        )
        return self._page(cursor, None, 0)

    def on_query_more(self, request: Request, version: str, locator: str) -> Response:
        key, _, offset_text = locator.rpartition("-")
        self.cursors.expire()
        cursor = self.cursors.get(key)
        if cursor is None or not offset_text.isdigit():
            return self.error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        cursor.touched = time.monotonic()
        cursor.batch_size = batch_size(request, cursor.batch_size)
        return self._page(cursor, key, int(offset_text))

    def _page(self, cursor: Cursor, key: str | None, offset: int) -> Response:
        """Answer one page; then render the next one in the background.

        Salesforce serves a cursor's pages from its own side while the client parses the last
        one; rendering ahead gives the sandbox the same overlap, so paging is not bound by the
        sum of server and client work.
        """
        total = len(cursor.ids)
        end = min(offset + cursor.batch_size, total)
        if key is None and end < total:
            key = self.cursors.add(cursor)
        ahead, cursor.ahead = cursor.ahead, None
        if ahead is not None and ahead[:2] == (offset, cursor.batch_size):
            body = ahead[2].result()
        else:
            body = self._render_page(cursor, key, offset)
        if end < total:
            cursor.ahead = (
                end,
                cursor.batch_size,
                self.cursors.renderer.submit(self._render_page, cursor, key, end),
            )
        elif key is not None:
            self.cursors.close(key)
        return Response(body, content_type="application/json")

    def _render_page(self, cursor: Cursor, key: str | None, offset: int) -> bytes:
        table = self.org.tables[cursor.query.sobject.name]
        page_ids = cursor.ids[offset : offset + cursor.batch_size]
        with self.org.lock:
            records = [
                cursor.query.project(rec, self.org.resolve, cursor.version)
                for rec in (table.get(i) for i in page_ids)
                if rec is not None
            ]
        end = offset + len(page_ids)
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": end >= len(cursor.ids)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/query/{key}-{end}"
        body["records"] = records
        return json_bytes(body)


def batch_size(request: Request, default: int) -> int:
    """`Sforce-Query-Options: batchSize=N`, clamped to Salesforce's 200..2000."""
    header = request.headers.get("Sforce-Query-Options", "")
    m = _BATCH_RE.search(header)
    if not m:
        return default
    return max(200, min(2000, int(m.group(1))))
