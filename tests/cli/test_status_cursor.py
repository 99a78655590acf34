"""`crmsync status` says where each sync resumes in words, not as the connector's raw JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.cli.format import describe_cursor
from crmsync.config import load_config
from crmsync.model.records import Cursor
from crmsync.store import Store
from tests.app.test_modes import write_setup


@pytest.mark.parametrize(
    ("value", "ids", "shown"),
    [
        (
            json.dumps({"mode": "incremental", "since": "2026-11-20T12:00:00+00:00"}),
            0,
            "modified since 2026-11-20 12:00:00 UTC (search), 0 ids at that stamp",
        ),
        (
            json.dumps(
                {
                    "mode": "incremental",
                    "since": "2026-11-20T12:00:00+00:00",
                    "until": "2026-11-20T13:00:00+00:00",
                    "after_id": 42,
                }
            ),
            0,
            "modified since 2026-11-20 12:00:00 UTC (search), window until "
            "2026-11-20 13:00:00 UTC after id 42, 0 ids at that stamp",
        ),
        (
            json.dumps({"mode": "full", "after": "300", "started": "2026-11-20T11:00:00+00:00"}),
            0,
            "full read under way (started 2026-11-20 11:00:00 UTC, next page after id 300)",
        ),
        (
            "2026-11-20T08:15:00.000+0000",
            1,
            "modified since 2026-11-20 08:15:00 UTC (SystemModstamp), 1 id at that stamp",
        ),
        (None, 0, "-"),
    ],
)
def test_a_cursor_in_words(value: str | None, ids: int, shown: str) -> None:
    """Each connector's cursor reads as the moment a sync resumes from and what it skips."""
    assert describe_cursor(value, ids) == shown


def test_status_prints_the_hubspot_cursor_readably(tmp_path: Path) -> None:
    """The issue's case: status showed `{"mode": "incremental", ...}`."""
    path = write_setup(tmp_path)
    state = {"mode": "incremental", "since": "2026-11-20T12:00:00+00:00"}
    with Store.open(load_config(path).store.url) as store:
        store.apply_batch(
            "hs", "deals", cursor=Cursor(json.dumps(state), ()), observed_at=datetime.now(UTC)
        )
    out = CliRunner().invoke(main, ["status", "-c", str(path)])
    assert out.exit_code == 0, out.output
    assert "cursor: modified since 2026-11-20 12:00:00 UTC (search), 0 ids at that stamp" in (
        out.output
    )
    assert '"mode"' not in out.output


def test_status_shows_moments_as_people_read_them(tmp_path: Path) -> None:
    """`at 2026-11-21 12:00:00 UTC`, not `at 2026-11-21 12:00:00.123456+00:00`."""
    path = write_setup(tmp_path)
    moment = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)
    with Store.open(load_config(path).store.url) as store:
        store.record_job_run("workflow:wf", started_at=moment, finished_at=moment, status="ok")
    out = CliRunner().invoke(main, ["status", "-c", str(path)])
    assert out.exit_code == 0, out.output
    assert "workflow wf: last scheduled run ok at 2026-11-21 12:00:00 UTC\n" in out.output
