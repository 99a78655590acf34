"""The YAML limits at their edges: what is just inside loads, what is just past is one line.

The hostile inputs far past the limits are in tests/data/hostile/files/ (test_hostile_files.py,
in a child process); these stay close to the limits, so they are safe in-process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.errors import InvalidInput
from crmsync.files import limits, load_yaml
from crmsync.files.limits import MAX_ALIAS_VALUES, MAX_DEPTH, MAX_FILE_BYTES


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "file.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(InvalidInput) as info:
        load_yaml(path)
    return str(info.value)


def test_nesting_up_to_the_limit_loads(tmp_path: Path) -> None:
    """64 levels of lists load; a 65th is refused where it opens."""
    inside = write(tmp_path, "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n")
    data, _ = load_yaml(inside)
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == []

    past = write(tmp_path, "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n")
    assert error_of(past) == (
        f"{past}:1:{MAX_DEPTH + 1}: nested more than {MAX_DEPTH} levels deep (lists and mappings)"
    )


def test_aliases_up_to_the_limit_load(tmp_path: Path) -> None:
    """An anchored value may be used 10,000 times; one more use is refused at that alias."""
    uses = ", ".join(["*a"] * (MAX_ALIAS_VALUES - 1))
    inside = write(tmp_path, f"a: &a 1\nb: [{uses}]\nc: *a\n")
    data, _ = load_yaml(inside)
    assert len(data["b"]) == MAX_ALIAS_VALUES - 1 and data["c"] == 1

    past = write(tmp_path, f"a: &a 1\nb: [{uses}]\nc: *a\nd: *a\n")
    assert error_of(past) == (
        f"{past}:4:4: anchors and aliases expand to more than {MAX_ALIAS_VALUES:,} values "
        "(alias *a adds 1); write the values out or use fewer aliases"
    )


def test_merge_keys_count_what_they_bring(tmp_path: Path) -> None:
    """`<<: *base` is an alias too: its mapping's values count toward the limit."""
    keys = ", ".join(f"k{i}: {i}" for i in range(1000))
    merges = "".join(f"s{i}: {{<<: *b}}\n" for i in range(10))
    path = write(tmp_path, f"base: &b {{{keys}}}\n{merges}")
    assert "anchors and aliases expand to more than" in error_of(path)
    data, _ = load_yaml(write(tmp_path, f"base: &b {{{keys}}}\n{merges.splitlines()[0]}\n"))
    assert data["s0"]["k999"] == 999


def test_depth_through_an_alias_counts(tmp_path: Path) -> None:
    """An anchored 40-deep list used 40 levels down is 80 deep: refused at the alias."""
    deep = "[" * 40 + "]" * 40
    path = write(tmp_path, f"a: &a {deep}\nb: {'[' * 40}*a{']' * 40}\n")
    assert error_of(path) == (
        f"{path}:2:44: nested more than {MAX_DEPTH} levels deep (lists and mappings) "
        "through alias *a"
    )


def test_a_file_of_exactly_the_size_limit_loads(tmp_path: Path) -> None:
    """1 MiB is allowed; one byte more is refused before it is parsed."""
    head = "a: "
    inside = write(tmp_path, head + "x" * (MAX_FILE_BYTES - len(head) - 1) + "\n")
    assert len(load_yaml(inside)[0]["a"]) == MAX_FILE_BYTES - len(head) - 1
    past = write(tmp_path, head + "x" * (MAX_FILE_BYTES - len(head)) + "\n")
    assert error_of(past) == (
        f"{past}:1:1: file is larger than 1 MiB (1,048,576 bytes); split it or shorten it"
    )


def test_values_up_to_the_limit_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file may hold MAX_VALUES values; the one past that is refused where it is (shown with
    the limit lowered to 1,000 to keep the test fast; the corpus has a file past the real one)."""
    monkeypatch.setattr(limits, "MAX_VALUES", 1000)
    items = ",".join(["1"] * 999)  # with the list itself
    data, _ = load_yaml(write(tmp_path, f"[{items}]\n"))
    assert len(data) == 999
    past = write(tmp_path, f"[{items},1]\n")
    assert error_of(past) == (
        f"{past}:1:2000: more than 1,000 values (keys, items and scalars); split the file"
    )
