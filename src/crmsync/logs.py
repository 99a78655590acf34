"""structlog set-up: key-value events, secrets redacted by one processor, JSON or console output."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = re.compile(
    r"(password|secret|token|assertion|authorization|api_key|private_key|session_id)", re.I
)
REDACTED = "***"
# A URL's `user:password@`: the password runs to the last "@" of the URL (an unescaped password
# may hold "@", "/" or "?"), so nothing of it shows; the URL ends at whitespace.
_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^:/@\s]*:)\S*(?P<tail>@)")
_PASSWORD_IN_QUERY = re.compile(r"(?P<head>[?&]password=)[^&\s]*", re.IGNORECASE)


def redact_url(text: str) -> str:
    """`text` with the password of any URL in it (and any `password=` parameter) as ***."""
    text = _PASSWORD_IN_URL.sub(rf"\g<head>{REDACTED}\g<tail>", text)
    return _PASSWORD_IN_QUERY.sub(rf"\g<head>{REDACTED}", text)


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of any field whose name looks like a secret."""
    for key in list(event):
        if key != "event" and SECRET_KEYS.search(key):
            event[key] = REDACTED
    return event


# On the console, these come right after the event, in this order (what a reader looks for
# first); the other keys follow in the order the code gave them, not alphabetically.
FIRST_KEYS = (
    "status",
    "job",
    "connection",
    "workflow",
    "object",
    "kind",
    "error",
    "reason",
)


def order_keys(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Put `FIRST_KEYS` first (after the timestamp, level and event the console prints ahead)."""
    first = {k: event[k] for k in FIRST_KEYS if k in event}
    rest = {k: v for k, v in event.items() if k not in first}
    return first | rest


def configure(level: str = "info", json_output: bool | None = None) -> None:
    """Set up structlog once: JSON lines unless attached to a terminal."""
    if json_output is None:
        json_output = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False, sort_keys=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            *(() if json_output else (order_keys,)),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
