"""The report the service serves at /report: built by the scheduled job (config.report.schedule)
or, before the first build, by the first request; kept in memory, rendered and compressed once.

Only one build runs at a time. A request that finds no page while a build is under way is told
to come back (503) instead of waiting: the endpoint's few threads stay free for /healthz and
/readyz. A page older than `max_age` (a standby worker runs no scheduled jobs) is rebuilt by the
next request; a failed build keeps the previous page.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from crmsync.app.report import ReportOptions, build_report
from crmsync.app.snapshots import fill_report_windows
from crmsync.config import Config
from crmsync.report.document import Chart, ReportDoc
from crmsync.report.html import render_html
from crmsync.schedule import cron_trigger
from crmsync.service.registry import trigger_period
from crmsync.store import Store

__all__ = ["LatestReport", "ReportPage", "for_worker"]

log = structlog.get_logger("crmsync.service")


@dataclass(frozen=True)
class ReportPage:
    """One rendered report: the page, gzipped once for clients that accept it."""

    html: bytes
    gzipped: bytes
    built_at: datetime
    charts: int
    seconds: float  # how long the build took


class LatestReport:
    """The latest rendered report and the one build allowed at a time."""

    def __init__(self, build: Callable[[], ReportDoc], *, max_age: float | None = None) -> None:
        self._build = build
        self._max_age = max_age
        self._building = threading.Lock()
        self._page: ReportPage | None = None
        self._built = 0.0  # monotonic time of the last good build

    @property
    def latest(self) -> ReportPage | None:
        """The last page built, without building."""
        return self._page

    def rebuild(self) -> ReportPage:
        """Build and render the report now (after any build under way); errors are raised and
        the previous page kept."""
        with self._building:
            return self._build_locked()

    def _build_locked(self) -> ReportPage:
        began = time.monotonic()
        doc = self._build()
        html = render_html(doc).encode("utf-8")
        page = ReportPage(
            html=html,
            gzipped=gzip.compress(html, compresslevel=6),
            built_at=doc.generated_at,
            charts=sum(isinstance(i, Chart) for s in doc.sections for i in s.items),
            seconds=time.monotonic() - began,
        )
        self._page, self._built = page, time.monotonic()
        return page

    def page(self) -> ReportPage | None:
        """The page to serve: the latest when fresh; else built now when no build is under way
        (None when one is: come back shortly). A failed build on demand serves the previous
        page when there is one, else raises."""
        page = self._page
        stale = (
            page is not None
            and self._max_age is not None
            and time.monotonic() - self._built > self._max_age
        )
        if page is not None and not stale:
            return page
        if not self._building.acquire(blocking=False):
            return page  # a build is under way: the previous page meanwhile, or None
        try:
            built = self._build_locked()
        except Exception as e:
            log.error(
                "report.render_failed", error=str(e), error_type=type(e).__name__, on="request"
            )
            if page is None:
                raise
            return page
        finally:
            self._building.release()
        log.info(
            "report.rendered", on="request", charts=built.charts, seconds=round(built.seconds, 3)
        )
        return built


def for_worker(store: Store, config: Config) -> LatestReport:
    """The service's report: the default period and every connection, as of each build; a page
    older than one and a half of the schedule's longest gap is rebuilt by the next request."""
    period = trigger_period(
        cron_trigger(config.report.schedule, config.service.timezone), datetime.now(UTC)
    )

    def build() -> ReportDoc:
        now = datetime.now(UTC)
        fill_report_windows(store, config, (), now=now)  # days not snapshotted, from history
        return build_report(store, config, ReportOptions(), now=now)

    return LatestReport(build, max_age=1.5 * period)
