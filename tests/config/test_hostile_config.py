"""Hostile config and mapping files: each gives its one exact line (exit 2), never a traceback,
and never a value that came from the environment, a secret file or a whole file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.config import load_config, load_mapping
from crmsync.errors import InvalidInput

DATA = Path(__file__).parents[1] / "data"
HOSTILE = sorted((DATA / "hostile" / "config").glob("*.yaml"))
SECRET_FILE_TEXT = (DATA / "config" / "secrets" / "client-secret.txt").read_text().strip()
# The environment the corpus is loaded with: every value here is a secret no message may show.
ENV = {
    "CRMSYNC_HOSTILE_PASSWORD": "sandbox-password",
    "CRMSYNC_HOSTILE_PG_PASSWORD": "p@ss/w?rd",
    "CRMSYNC_HOSTILE_NAME": "hs-secret-name",
}
NEVER_SHOWN = [*ENV.values(), SECRET_FILE_TEXT, "root:x:0", "w/rd", "pa/ss", "pa?ss"]


def expected_message(path: Path) -> str:
    """The `# expect: <line>:<col>: <text>` comment on a hostile file's first line."""
    first = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert first.startswith("# expect: "), f"{path.name} has no '# expect:' first line"
    return first.removeprefix("# expect: ")


def load_error(path: Path) -> InvalidInput:
    """The error loading `path` raises: as a mapping file for `mapping_*`, else as a config."""
    with pytest.raises(InvalidInput) as info:
        if path.name.startswith("mapping_"):
            load_mapping(path)
        else:
            load_config(path, env=ENV)
    return info.value


def test_hostile_corpus_is_large_enough() -> None:
    """The corpus holds at least 20 hostile files."""
    assert len(HOSTILE) >= 20


@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_hostile_config(path: Path) -> None:
    """Each hostile file fails with exactly its expected line, exit code 2, and no secret."""
    error = load_error(path)
    message = str(error)
    assert error.exit_code == 2
    assert "\n" not in message
    assert message == f"{path}:{expected_message(path)}"
    assert not [s for s in NEVER_SHOWN if s in message]


CONFIGS = [p for p in HOSTILE if not p.name.startswith("mapping_")]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_crmsync_validate_says_the_same_line(path: Path) -> None:
    """`crmsync validate -c <file>` prints that line alone on stderr and exits 2."""
    result = CliRunner().invoke(main, ["validate", "-c", str(path)], env=ENV)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"crmsync: error: {path}:{expected_message(path)}"]
    assert not [s for s in NEVER_SHOWN if s in result.stderr + result.stdout]


def test_a_secret_in_a_typed_field_is_named_not_shown(tmp_path: Path) -> None:
    """`${VAR}` in a number field names the variable; its value (even a short one) is not
    repeated, while a value written in the file still is."""
    path = tmp_path / "c.yaml"
    source = (DATA / "hostile" / "config" / "secret_env_in_number.yaml").read_text()
    source = source.replace("../../config/", f"{DATA / 'config'}/")
    path.write_text(source)
    config = load_config(path, env={"CRMSYNC_HOSTILE_PASSWORD": "30"})
    assert config.connections[0].sync.timeout_seconds == 30
    with pytest.raises(InvalidInput) as info:
        load_config(path, env={"CRMSYNC_HOSTILE_PASSWORD": "abc"})
    assert "abc" not in str(info.value) and "${CRMSYNC_HOSTILE_PASSWORD}" in str(info.value)
    path.write_text(source.replace("${CRMSYNC_HOSTILE_PASSWORD}", "soon"))
    with pytest.raises(InvalidInput) as info:
        load_config(path, env={})
    assert str(info.value).endswith("expected a number, got 'soon'")
