"""The store's one error type, and the helpers that keep its messages to one safe line."""

from __future__ import annotations

import re

from crmsync.errors import InvalidInput

# user:password@ in a URL's authority; the password may hold "@" (up to the last one).
_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^:/@\s]*:)[^/\s]*(?P<tail>@)")
_PASSWORD_IN_QUERY = re.compile(r"(?P<head>[?&]password=)[^&\s]*", re.IGNORECASE)
_MAX_REASON = 300


class StoreError(InvalidInput):
    """The store cannot be opened or cannot do what was asked; the message names the URL."""


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for messages and logs."""
    url = _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", url)
    return _PASSWORD_IN_QUERY.sub(r"\g<head>***", url)


def one_line(error: BaseException, secret: str | None = None) -> str:
    """The database's reason for an error, on one short line, without the given secret.

    PostgreSQL's primary message is used alone: its DETAIL lines can quote a whole row.
    """
    orig = getattr(error, "orig", None) or error  # the driver's error, if SQLAlchemy wrapped one
    primary = getattr(getattr(orig, "diag", None), "message_primary", None)
    text = " ".join(str(primary or orig).split())
    if secret:
        text = text.replace(secret, "***")
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 3] + "..."
    return text or type(orig).__name__
