"""Where each key and value of a YAML file is, so an error can name its line and column."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crmsync.errors import InvalidInput

Loc = tuple[str | int, ...]
"""A path into YAML data: mapping keys and list indexes, e.g. ("connections", 2, "auth")."""

Position = tuple[int, int]
"""A 1-based (line, column)."""


class Marks:
    """Where each key and value of a YAML document is, for error messages that name a line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[Loc, Position] = {}
        self._values: dict[Loc, Position] = {}
        self._names: dict[Loc, str] = {}  # keys renamed after loading, by their new path

    def add(self, loc: Loc, value: Position, key: Position | None = None) -> None:
        """Record the position of the value at `loc` (and of its key, inside a mapping)."""
        self._values[loc] = value
        if key is not None:
            self._keys[loc] = key

    def rename(self, old: Loc, new: Loc) -> None:
        """Let `new` answer with the positions of `old` (a key rewritten after loading)."""
        for table in (self._keys, self._values):
            for loc in [loc for loc in table if loc[: len(old)] == old]:
                table[new + loc[len(old) :]] = table[loc]
        self._names[new] = str(old[-1])

    def __contains__(self, loc: object) -> bool:
        return loc in self._values

    def position(self, loc: Sequence[str | int], *, key: bool = False) -> Position:
        """The line and column of `loc`: its value (or key, with `key=True`), or, when nothing
        is there (a missing field), the key of the closest enclosing entry that is."""
        loc = tuple(loc)
        if loc in self._values:
            return self._keys.get(loc, self._values[loc]) if key else self._values[loc]
        for n in range(len(loc) - 1, -1, -1):
            prefix = loc[:n]
            if prefix in self._values:
                return self._keys.get(prefix, self._values[prefix])
        return (1, 1)

    def where(self, loc: Sequence[str | int], *, key: bool = False) -> str:
        """`<file>:<line>:<col>` of `loc`, the start of an error message."""
        line, col = self.position(loc, key=key)
        return f"{self.path}:{line}:{col}"

    def name(self, loc: Sequence[str | int]) -> str:
        """The last key of `loc` as written in the file (before any rename)."""
        return self._names.get(tuple(loc), str(loc[-1]))

    def dotted(self, loc: Sequence[str | int]) -> str:
        """`loc` as admins read it: `connections[2].auth.password` (in the file's own words)."""
        out = ""
        for n, part in enumerate(loc):
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                name = self._names.get(tuple(loc[: n + 1]), part)
                out += f".{name}" if out else name
        return out

    def error(self, loc: Sequence[str | int], message: str, *, key: bool = False) -> InvalidInput:
        """An `InvalidInput` for the value at `loc`: `<file>:<line>:<col>: <field>: <message>`."""
        field = self.dotted(loc)
        return InvalidInput(f"{self.where(loc, key=key)}: {field + ': ' if field else ''}{message}")
