"""A local Salesforce and HubSpot that the real client libraries talk to, for tests and demos."""

from crmsync.sandbox.faults import Fault
from crmsync.sandbox.runner import Sandbox, SandboxConfig

__all__ = ["Fault", "Sandbox", "SandboxConfig"]
