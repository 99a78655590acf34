"""The sandbox is an optional extra (`crmsync[sandbox]`): production installs and the Docker
image leave it and its web server out. The commands that start it say so in one line."""

from __future__ import annotations

import importlib

from crmsync.errors import InvalidInput

# What the sandbox imports that a plain `pip install crmsync` does not bring.
EXTRA_MODULES = ("werkzeug", "cheroot", "trustme", "crmsync.sandbox")


def require_sandbox(command: str) -> None:
    """Import the sandbox, or fail with the one line that says how to get it (exit 2)."""
    try:
        importlib.import_module("crmsync.sandbox.runner")  # the package itself loads lazily
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if not any(missing == m or missing.startswith(m + ".") for m in EXTRA_MODULES):
            raise
        raise InvalidInput(
            f"{command} needs the CRM sandbox, which is not installed here: "
            "install crmsync[sandbox] (pip install 'crmsync[sandbox]')"
        ) from None
