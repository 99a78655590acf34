"""Console log lines put the event first, then status and the keys a reader looks for, then
the rest in the order the code gave them (not alphabetically)."""

from __future__ import annotations

import re

import pytest
import structlog

from crmsync.logs import configure


def test_status_comes_right_after_the_event(capsys: pytest.CaptureFixture[str]) -> None:
    """`status=` is the first field, then connection, then the counts as given."""
    configure(json_output=False)
    try:
        structlog.get_logger("t").info(
            "job.finished", api_calls=3, fetched=7, status="ok", connection="sf", apples=1
        )
    finally:
        structlog.reset_defaults()
    line = capsys.readouterr().err.strip()
    fields = re.findall(r"(\w+)=", line.split("job.finished", 1)[1])
    assert fields == ["status", "connection", "api_calls", "fetched", "apples"]


def test_json_lines_keep_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON form is not reordered or trimmed: every field is there."""
    configure(json_output=True)
    try:
        structlog.get_logger("t").info("job.finished", status="ok", b=2, a=1)
    finally:
        structlog.reset_defaults()
    line = capsys.readouterr().err
    for part in ('"event": "job.finished"', '"status": "ok"', '"a": 1', '"b": 2'):
        assert part in line
