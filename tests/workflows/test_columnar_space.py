"""The columnar engine's whitespace is Python's: a text blank to `str.strip` is blank on columns."""

from __future__ import annotations

import sys

from crmsync.workflows.columnar.builtin import SPACE


def test_space_is_every_character_python_strips() -> None:
    """SPACE, written out, holds exactly the code points `str.isspace` accepts, each once."""
    expected = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    assert expected == SPACE
