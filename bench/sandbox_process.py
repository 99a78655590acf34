"""The sandbox in its own process, as a CRM would be, for the benchmarks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def sandbox_process(
    opportunities: int, extra: list[str] | None = None
) -> Iterator[tuple[dict[str, Any], int]]:
    """Start `crmsync sandbox --json` with this many opportunities per CRM (and `extra`
    options); yields its connection details and its process id, and stops it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmsync", "--log-level", "error", "sandbox",
         "--opportunities", str(opportunities), "--json", *(extra or [])],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline()), proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
