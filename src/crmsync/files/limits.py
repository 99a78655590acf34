"""Limits on the YAML files admins edit, checked while the file is parsed, before any of it is
built into data: a file size, a nesting depth, a number of values and how much anchors and
aliases may add.

The checks sit at PyYAML's event level (`LimitedLoader.get_event`): every event is seen once,
in order, and the composer never descends past an event that breaks a limit, so the cost stays
linear in the file and no limit can be reached through recursion. An alias is measured by the
size and height of the node its anchor names (known once that node's end event has passed), so
an alias bomb is refused at its first alias that goes over, before anything is expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    NodeEvent,
    ScalarEvent,
)

from crmsync.errors import InvalidInput

MAX_FILE_BYTES = 1024 * 1024
"""The largest YAML file read (workflows, mappings, configs): 1 MiB."""

MAX_DEPTH = 64
"""The deepest nesting of lists and mappings, counting what aliases bring in."""

MAX_ALIAS_VALUES = 10_000
"""How many values (keys, scalars, lists, mappings) all the aliases of a file may add together."""

MAX_VALUES = 100_000
"""How many values a file may hold in all, aliases expanded (reading 1 MiB of one-character
values would otherwise take most of a minute)."""


@dataclass
class _Open:
    """A list or mapping whose end event has not come yet."""

    anchor: str | None
    size: int = 1  # values in it, itself included, aliases expanded
    height: int = 1  # levels of lists and mappings, itself included
    anchors: list[str] = field(default_factory=list)


class LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a file that goes past a limit while its events pass by.

    `path` names the file in the one-line `InvalidInput` a limit raises.
    """

    def __init__(self, text: str, path: str) -> None:
        super().__init__(text)
        self._path = path
        self._open: list[_Open] = []
        self._done: dict[str, tuple[int, int]] = {}  # anchor -> (size, height) of its node
        self._alias_values = 0
        self._values = 0

    def get_event(self) -> Event:
        """The next parser event, after checking it against the limits."""
        event: Event = super().get_event()  # type: ignore[no-untyped-call]
        if isinstance(event, CollectionStartEvent | ScalarEvent):
            self._count(event, 1)
        if isinstance(event, CollectionStartEvent):
            self._open.append(_Open(event.anchor))
            if len(self._open) > MAX_DEPTH:
                raise self._error(
                    event, f"nested more than {MAX_DEPTH} levels deep (lists and mappings)"
                )
        elif isinstance(event, CollectionEndEvent) and self._open:
            done = self._open.pop()
            if done.anchor is not None:
                self._done[done.anchor] = (done.size, done.height)
            self._add(done.size, done.height)
        elif isinstance(event, ScalarEvent):
            if event.anchor is not None:
                self._done[event.anchor] = (1, 0)
            self._add(1, 0)
        elif isinstance(event, AliasEvent):
            self._alias(event)
        return event

    def _alias(self, event: AliasEvent) -> None:
        anchor = event.anchor
        if any(o.anchor == anchor for o in self._open):
            raise self._error(event, f"invalid YAML: alias *{anchor} refers to itself")
        if anchor not in self._done:
            return  # undefined: the composer reports it
        size, height = self._done[anchor]
        self._alias_values += size
        if self._alias_values > MAX_ALIAS_VALUES:
            raise self._error(
                event,
                f"anchors and aliases expand to more than {MAX_ALIAS_VALUES:,} values "
                f"(alias *{anchor} adds {size:,}); write the values out or use fewer aliases",
            )
        if len(self._open) + height > MAX_DEPTH:
            raise self._error(
                event,
                f"nested more than {MAX_DEPTH} levels deep (lists and mappings) "
                f"through alias *{anchor}",
            )
        self._count(event, size)
        self._add(size, height)

    def _count(self, event: Event, values: int) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise self._error(
                event, f"more than {MAX_VALUES:,} values (keys, items and scalars); split the file"
            )

    def _add(self, size: int, height: int) -> None:
        """Count a finished value into the list or mapping holding it."""
        if self._open:
            parent = self._open[-1]
            parent.size += size
            parent.height = max(parent.height, height + 1)

    def _error(self, event: NodeEvent | Event, message: str) -> InvalidInput:
        mark = event.start_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return InvalidInput(f"{self._path}:{line}:{col}: {message}")
