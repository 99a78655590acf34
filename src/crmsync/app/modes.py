"""A workflow's effective mode: the one answer to "is it live?", and where the answer comes from.

A workflow file says `mode: shadow` or `mode: live`; the config's `writeback.modes` overrides it
per workflow; the global dry-run switch (`writeback.dry_run`, or `--dry-run` /
`CRMSYNC_DRY_RUN`) overrides both. `validate`, `plan`, `apply`, `status`, `crmsync workflows`,
the service's log events and its metrics all ask `effective_mode`, so they never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmsync.config import Config
from crmsync.errors import InvalidInput
from crmsync.workflows.load import LoadedWorkflow

__all__ = ["Mode", "check_modes", "effective_mode"]


@dataclass(frozen=True)
class Mode:
    """A workflow's mode on a connection and where it was decided."""

    mode: str  # live | shadow | dry-run | off (the connection is outside the workflow's scope)
    source: str  # file | config writeback.modes | config writeback.dry_run | --dry-run | ...

    def __str__(self) -> str:
        return f"{self.mode}, from {self.source}"


def effective_mode(
    config: Config | None,
    loaded: LoadedWorkflow,
    connection: str | None = None,
    *,
    dry_run: bool = False,
) -> Mode:
    """The mode `loaded` runs in (on `connection`, when given), with its source.

    `dry_run` is the command line's switch (`--dry-run` or `CRMSYNC_DRY_RUN`); without a
    `config`, only the file and the switch count."""
    scope = loaded.workflow.scope.connections
    if connection is not None and scope is not None and connection not in scope:
        return Mode("off", "file scope.connections")
    if dry_run:
        return Mode("dry-run", "--dry-run")
    if config is not None:
        if config.writeback.dry_run:
            return Mode("dry-run", "config writeback.dry_run")
        override = config.writeback.modes.get(loaded.name)
        if override is not None:
            return Mode(override, "config writeback.modes")
    return Mode(loaded.workflow.mode, "file")


def check_modes(config: Config, known: set[str]) -> None:
    """A mode override for a workflow that does not exist is a mistake, not a no-op."""
    for name in config.writeback.modes:
        if name not in known:
            raise InvalidInput(
                f"writeback.modes: no workflow named '{name}' "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )
