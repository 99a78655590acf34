"""Without the `sandbox` extra (as in the Docker image), `crmsync sandbox` and `crmsync demo`
say in one line how to get it, and exit 2, instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs crmsync's CLI with the sandbox extra's packages made impossible to import.
WITHOUT_EXTRA = """
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("werkzeug", "cheroot", "trustme"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from crmsync.cli import main
sys.argv = ["crmsync", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("command", ["sandbox", "demo"])
def test_missing_extra_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    """The command names the extra to install; nothing else is printed."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA, command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    assert len(output.splitlines()) == 1, output
    assert "install crmsync[sandbox]" in output
    assert f"crmsync {command}" in output


def test_other_commands_do_not_need_the_extra(tmp_path: Path) -> None:
    """The rest of the CLI (here its help) works without the sandbox's packages."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA, "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "sandbox" in result.stdout
