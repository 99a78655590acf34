"""A local Salesforce and HubSpot that the real client libraries talk to, for tests and demos."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmsync.sandbox.faults import Fault
    from crmsync.sandbox.runner import Sandbox, SandboxConfig

__all__ = ["Fault", "Sandbox", "SandboxConfig"]


def __getattr__(name: str) -> Any:
    """Import lazily, so that using one sandbox module does not start up all of them."""
    if name == "Fault":
        from crmsync.sandbox.faults import Fault

        return Fault
    if name in ("Sandbox", "SandboxConfig"):
        from crmsync.sandbox import runner

        return getattr(runner, name)
    raise AttributeError(name)
