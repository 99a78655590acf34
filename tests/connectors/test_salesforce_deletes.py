"""The Salesforce connector's getDeleted windows under the real rules the sandbox enforces: more
than one minute long, seconds cut, and the next window starting at `latestDateCovered`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from crmsync.connectors.base import Page
from crmsync.connectors.salesforce_api import SalesforceApi, parse_stamp
from crmsync.model.records import Cursor
from tests.conftest import NOW, make_sandbox
from tests.crm import sf_connector


def _cursor(pages: list[Page]) -> Cursor:
    cursors = [p.cursor for p in pages if p.cursor is not None]
    assert cursors
    return cursors[-1]


def test_a_window_shorter_than_a_minute_is_widened_not_refused() -> None:
    """A pull seconds after the last one still asks getDeleted for more than a minute."""
    sb = make_sandbox(opportunities=5)
    try:
        conn = sf_connector(sb, overlap_seconds=0)
        cursor = _cursor(list(conn.pull(None, started_at=NOW)))
        victim = next(iter(sb.salesforce.org.tables["Opportunity"]))
        sb.salesforce.admin_delete("Opportunity", victim, hard=True)
        sb.clock.advance(timedelta(seconds=61))
        sb.salesforce.calls.reset()
        conn = sf_connector(sb, overlap_seconds=0)  # the next run logs in: the org's time anew
        pages = list(conn.pull(cursor, started_at=NOW))
        assert victim in {i for p in pages for i in p.deleted_ids}
        # getDeleted goes with the first query page in one /composite call
        assert sb.salesforce.calls.counts() == {"oauth_token": 1, "composite": 1}
    finally:
        sb.stop()


def test_the_next_window_starts_at_latest_date_covered(monkeypatch: pytest.MonkeyPatch) -> None:
    """When getDeleted covers less than asked (transactions still open), the pull holds its
    cursor back so that the next window starts at latestDateCovered; otherwise it does not."""
    sb = make_sandbox(opportunities=5)
    lag: list[timedelta] = [timedelta(0)]
    call = SalesforceApi.call

    def lagging(self: SalesforceApi, what: str, fn: Callable[[Any], Any]) -> Any:
        answer = call(self, what, fn)
        if what == "changes" and lag[0]:  # the /composite call: query page and getDeleted
            deleted = answer["compositeResponse"][1]["body"]
            covered = parse_stamp(deleted["latestDateCovered"]) - lag[0]
            deleted["latestDateCovered"] = covered.strftime("%Y-%m-%dT%H:%M:00.000+0000")
        return answer

    monkeypatch.setattr(SalesforceApi, "call", lagging)
    try:
        conn = sf_connector(sb, overlap_seconds=60)
        first = _cursor(list(conn.pull(None, started_at=NOW)))
        sb.clock.advance(timedelta(minutes=30))
        conn = sf_connector(sb, overlap_seconds=60)  # each run logs in: the org's time anew
        steady = list(conn.pull(first, started_at=NOW))
        assert all(p.cursor in (None, first) for p in steady)  # nothing changed, nothing moved
        # covered up to ten minutes before the cursor's own stamp
        now = NOW + timedelta(minutes=30)
        lag[0] = now - parse_stamp(first.value) + timedelta(minutes=10)
        held = list(sf_connector(sb, overlap_seconds=60).pull(first, started_at=NOW))
        [back] = [p.cursor for p in held if p.cursor is not None and p.cursor != first]
        covered = (now - lag[0]).replace(second=0, microsecond=0)
        # the next pull asks from `cursor - overlap`: exactly latestDateCovered
        assert parse_stamp(back.value) - timedelta(seconds=60) == covered
        assert back.ids_at_value == ()
    finally:
        sb.stop()
