"""A SQLite store file that does not exist: a command that reads refuses it (a mistyped path
answered "nothing synced" before, and left an empty file behind); `status` and `workflows`
show an empty store with a note; only a sync makes the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.store import Store, StoreError, StoreMissing
from tests.app.test_modes import write_setup


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["plan", "--opportunity", "123"],
        ["apply"],
        ["audit", "--summary"],
        ["report"],
        ["diff", "{wf}", "{wf}"],
    ],
)
def test_a_reading_command_refuses_a_store_file_that_does_not_exist(
    tmp_path: Path, command: list[str]
) -> None:
    path = write_setup(tmp_path)
    wf = str(tmp_path / "workflows" / "wf.yaml")
    args = [a.replace("{wf}", wf) for a in command]
    out = CliRunner().invoke(main, [*args, "-c", str(path)])
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1, out.output
    assert f"store sqlite:///{tmp_path / 'store.db'}: no such file" in lines[0]
    assert "crmsync sync` creates it" in lines[0]
    assert not (tmp_path / "store.db").exists()


@pytest.mark.parametrize("command", ["status", "workflows"])
def test_status_and_workflows_show_an_empty_store_with_a_note(tmp_path: Path, command: str) -> None:
    """What runs and where its modes come from is worth seeing before the first sync."""
    path = write_setup(tmp_path)
    out = CliRunner().invoke(main, [command, "-c", str(path)])
    assert out.exit_code == 0, out.output
    assert out.stderr.startswith(f"note: store sqlite:///{tmp_path / 'store.db'}: no such file")
    assert "showing an empty store" in out.stderr
    assert ("never synced" if command == "status" else "wf") in out.stdout
    assert "note:" not in out.stdout
    assert not (tmp_path / "store.db").exists()


def test_a_store_that_exists_opens_as_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(StoreMissing):
        Store.open(url, create=False)
    Store.open(url).close()  # a sync's open makes it
    with Store.open(url, create=False) as store:
        assert store.count("hs") == 0
    Store.open("sqlite://", create=False).close()  # in memory: nothing to find


def test_a_url_with_driver_options_is_still_checked(tmp_path: Path) -> None:
    """`?timeout=30` is not the URI form: the file must still exist (review found it made)."""
    url = f"sqlite:///{tmp_path / 'store.db'}?timeout=30"
    with pytest.raises(StoreMissing):
        Store.open(url, create=False)
    assert not (tmp_path / "store.db").exists()


@pytest.mark.parametrize("command", ["validate", "plan", "status", "run"])
def test_a_config_path_that_is_a_folder_is_one_line(tmp_path: Path, command: str) -> None:
    """It was click's three-line usage error ("Invalid value for '--config' / '-c'")."""
    out = CliRunner().invoke(main, [command, "-c", str(tmp_path)])
    assert out.exit_code == 2
    assert out.output.strip().splitlines() == [
        f"crmsync: error: {tmp_path}: cannot read file: Is a directory"
    ]


def test_a_path_the_file_system_refuses_is_one_line() -> None:
    """Checking that the file exists can fail too (a name too long): a StoreError, as the
    open itself says it, never an OSError's traceback."""
    with pytest.raises(StoreError) as caught:
        Store.open("sqlite:///" + "a" * 5000 + ".db", create=False)
    assert "File name too long" in str(caught.value)
