"""Broken workflow files: `crmsync validate` reports each with one exact line and exit code 2.

Every file in tests/data/workflows/broken/ has one problem and says on its first line what the
command prints for it: `# expect: <line>:<col>: <field>: <message>` (the message after the file
path). A second line `# config: yes` marks the files that need the checks against the configured
connections (`--config config/sandbox.yaml`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmsync.cli import main

ROOT = Path(__file__).resolve().parents[2]
BROKEN_DIR = ROOT / "tests" / "data" / "workflows" / "broken"
BROKEN = sorted(BROKEN_DIR.glob("*.yaml"))
SANDBOX_CONFIG = ROOT / "config" / "sandbox.yaml"


def header(path: Path) -> tuple[str, bool]:
    """The `# expect:` text on a broken file's first line, and whether it has `# config: yes`."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("# expect: "), f"{path.name} has no '# expect:' first line"
    return lines[0].removeprefix("# expect: "), len(lines) > 1 and lines[1] == "# config: yes"


@pytest.fixture
def sandbox_env(tmp_path: Path) -> dict[str, str | None]:
    """Environment under which config/sandbox.yaml loads with no sandbox ever started.

    The URLs have defaults, but the JWT key and the CA must exist as files (normally the
    sandbox writes them to the git-ignored var/sandbox/), so stand-ins are made here.
    """
    (tmp_path / "jwt-private-key.pem").write_text("stand-in\n", encoding="utf-8")
    (tmp_path / "sandbox-ca.pem").write_text("stand-in\n", encoding="utf-8")
    return {
        "CRMSYNC_SANDBOX_DIR": str(tmp_path),
        "CRMSYNC_SANDBOX_CA": str(tmp_path / "sandbox-ca.pem"),
        "CRMSYNC_SANDBOX_SF_URL": None,  # unset: the config's default URLs apply
        "CRMSYNC_SANDBOX_HS_URL": None,
        "CRMSYNC_CONFIG": None,
    }


def run(args: list[str], env: dict[str, str | None]) -> Result:
    """`crmsync <args>` run in-process through click, stdout and stderr kept apart."""
    return CliRunner(env=env).invoke(main, args)


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_workflow_gives_one_exact_line(
    path: Path, sandbox_env: dict[str, str | None]
) -> None:
    """A broken workflow file exits 2 with exactly its expected one-line error, no traceback."""
    expect, needs_config = header(path)
    args = ["validate", str(path)]
    if needs_config:
        args += ["--config", str(SANDBOX_CONFIG)]
    result = run(args, sandbox_env)

    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"crmsync: error: {path}:{expect}"]
    # Before the workflow is read, `--config` reports the configuration itself as fine.
    ok_config = [f"ok: {SANDBOX_CONFIG} (2 connections)"] if needs_config else []
    assert result.stdout.splitlines() == ok_config


def test_corpus_has_at_least_30_files() -> None:
    """The broken-workflow corpus holds at least 30 files, each with an expect line."""
    assert len(BROKEN) >= 30
    for path in BROKEN:
        header(path)


def test_shipped_workflows_validate(sandbox_env: dict[str, str | None]) -> None:
    """`crmsync validate workflows/` accepts the shipped workflow files with exit code 0."""
    result = run(["validate", str(ROOT / "workflows")], sandbox_env)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    for name in ("pipeline-hygiene", "stage-gates"):
        assert f"ok: {ROOT / 'workflows' / name}.yaml (workflow {name}:" in result.stdout


def test_shipped_workflows_validate_against_sandbox_config(
    sandbox_env: dict[str, str | None],
) -> None:
    """With `--config config/sandbox.yaml` and no sandbox running, the shipped files pass too."""
    args = ["validate", str(ROOT / "workflows"), "--config", str(SANDBOX_CONFIG)]
    result = run(args, sandbox_env)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.splitlines()[0] == f"ok: {SANDBOX_CONFIG} (2 connections)"
