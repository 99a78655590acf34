"""The README's walk-through (a new workflow from scratch to live and back) runs as written:
its shell blocks, joined, against the bundled sandbox, in a copy of the project's folders."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADING = "### Walk-through: a new workflow, from scratch to live"


def walkthrough() -> str:
    """The walk-through's shell blocks, in order, as one script."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(HEADING) :]
    section = section[: section.index("\n## ")]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))


@pytest.mark.slow
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    """Every command succeeds, and each step says what the README says it does: the new file
    validates in shadow, its example passes, plan and diff speak about it, going live creates
    tasks in the sandbox CRMs, the audit counts them, and the roll-back is shadow again."""
    for folder in ("config", "connectors", "workflows"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "var" / "sandbox").mkdir(parents=True)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    # the sandbox is stopped at the end however the script ends; killed if it lingers, so that
    # its inherited output pipe cannot keep this test waiting
    script = (
        "set -euo pipefail\n"
        "trap 'kill ${SANDBOX:-} 2>/dev/null || true; "
        "for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do kill -0 ${SANDBOX:-0} 2>/dev/null || break; "
        "sleep 1; done; kill -9 ${SANDBOX:-} 2>/dev/null || true' EXIT\n"
    )
    proc = subprocess.Popen(
        ["bash", "-c", script + walkthrough()],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CRMSYNC_LOG_LEVEL": "warning"},
        start_new_session=True,  # a timeout takes the background sandbox down too
    )
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert (
        "ok: workflows/big-quiet-deals.yaml (workflow big-quiet-deals: 1 rule, 1 example); "
        "mode shadow, from file"
    ) in out
    assert "PASS big-quiet-deals: a big quiet deal\n1 passed, 0 failed" in out
    assert re.search(r"\[big-quiet-deals\] in scope  \(mode shadow, from file\)", out)
    stops = [int(n) for n in re.findall(r"quiet: \d+ -> \d+ firings: (\d+) stop firing", out)]
    assert len(stops) == 2 and min(stops) > 0
    created = [int(n) for n in re.findall(r"sandbox-(?:sf|hs): created=(\d+) ", out)]
    assert len(created) == 2 and min(created) > 0
    assert re.search(rf"big-quiet-deals/quiet .* confirmed={sum(created)}\b", out)
    assert out.rstrip().splitlines()[-1].startswith("  sandbox-hs: shadow, from file;")
