"""The README's report, end to end: `crmsync demo`, then `crmsync report -o report.html`,
opened offline in headless Chromium: every chart drew one bar or marker per value of its
series, and a screenshot is kept.

The screenshot is written under pytest's tmp folder, copied to $CRMSYNC_ARTIFACTS when that is
set, and to docs/report.png (the README's picture) when CRMSYNC_UPDATE_SCREENSHOT=1:

    CRMSYNC_UPDATE_SCREENSHOT=1 .venv/bin/pytest tests/report/test_render_demo.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crmsync.report.html import dom_id
from tests.report.dom import chromium, drawn_points, rendered, screenshot

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PICTURE = ROOT / "docs" / "report.png"


def _crmsync(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "crmsync.cli", "--log-level", "warning", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_demo_report_draws_every_chart_in_chromium(tmp_path: Path) -> None:
    """On the demo store the page opens offline and each chart draws what its series hold."""
    chromium()  # skip early (outside CI) when there is no browser
    for folder in ("config", "connectors", "workflows"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    config = str(tmp_path / "config" / "sandbox.yaml")
    _crmsync(tmp_path, "demo", "--opportunities", "400", "-c", config)
    today = datetime.now(UTC).date()
    period = ("--since", str(today - timedelta(weeks=13)), "--until", str(today))
    wrote = _crmsync(tmp_path, "report", "-c", config, "-o", "report.html", *period)
    assert wrote.stdout.startswith("Wrote report.html (html, ")
    numbers = _crmsync(tmp_path, "report", "-c", config, "--format", "json", *period)
    doc = json.loads(numbers.stdout)
    charts = [i for s in doc["sections"] for i in s["items"] if i["type"] == "chart"]
    assert len(charts) >= 5 and {c["kind"] for c in charts} >= {"waterfall", "line", "grouped_bar"}

    page = rendered(tmp_path / "report.html")
    (body,) = page.find("body")
    assert body.attrs.get("data-charts-drawn") == str(len(charts)), body.attrs
    for chart in charts:
        expected = sum(len(s["y"]) for s in chart["series"])
        assert expected > 0, chart["id"]
        element = page.by_id(dom_id("chart", chart["id"]))
        assert drawn_points(element, chart["kind"]) == expected, chart["id"]

    png = screenshot(tmp_path / "report.html", tmp_path / "report.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    if os.environ.get("CRMSYNC_ARTIFACTS"):
        artifacts = Path(os.environ["CRMSYNC_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, artifacts / "report.png")
        shutil.copy(tmp_path / "report.html", artifacts / "report.html")
    if os.environ.get("CRMSYNC_UPDATE_SCREENSHOT") == "1":
        shutil.copy(png, PICTURE)
