"""Several problems found in the files an admin edits, each one line with file:line:col.

`validate` (crmsync's command) prints every line; any other command prints the first and counts
the rest, so its error stays one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from crmsync.errors import InvalidInput


class Problems(InvalidInput):
    """Every problem found, in file order; the message is the first one and a count of the rest."""

    def __init__(self, lines: Sequence[str]) -> None:
        if not lines:
            raise ValueError("Problems needs at least one problem")
        self.lines = list(lines)
        rest = len(self.lines) - 1
        more = f" (and {rest} more problem{'s' if rest > 1 else ''})" if rest else ""
        super().__init__(self.lines[0] + more)

    @staticmethod
    def lines_of(error: InvalidInput) -> list[str]:
        """The one-line problems an error stands for: all of them for `Problems`, else itself."""
        return list(error.lines) if isinstance(error, Problems) else [str(error)]
