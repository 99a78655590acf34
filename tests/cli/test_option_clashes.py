"""Command-line options that contradict each other: one line, exit 2, nothing done."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from crmsync.cli import main


def test_full_and_reconcile_together_are_refused(tmp_path: Path) -> None:
    """`sync --full --reconcile` is refused before the config is even read."""
    missing = tmp_path / "no-such-config.yaml"
    result = CliRunner().invoke(main, ["sync", "--full", "--reconcile", "-c", str(missing)])
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "crmsync: error: --full and --reconcile cannot be used together: --full already "
        "re-reads everything (and restarts the cursor); --reconcile re-reads it keeping the "
        "cursor"
    ]
    assert not missing.exists()
