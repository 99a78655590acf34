"""Task text for a CRM: plain text without control characters, or HTML for HubSpot, bounded.

A task's subject and body are built from CRM data (a deal's name, an owner's name), which can
hold anything: terminal escape codes, CR/LF, bidirectional overrides, markup, a megabyte. The
texts crmsync writes hold none of that:

- `plain_text`: no C0/C1 control character and no bidirectional embedding, override or isolate
  (a subject is one line: each becomes a space; a body keeps LF and tab, CR LF becomes LF);
- `reflow`: a body written as a YAML `|` block keeps the admin's hard line breaks; reflowed,
  each paragraph is one line (list items keep theirs), so a CRM wraps it to its own width;
- `html_text`: the plain text escaped for HTML (``<`` becomes ``&lt;``), one ``<p>`` per
  paragraph and ``<br>`` within one, for HubSpot's ``hs_task_body``, which is rich text
  (../shared/CRM_API_FACTS.md);
- both cut to a limit with an ellipsis: `SUBJECT_LIMIT` (Salesforce Task.Subject holds 255
  characters), `BODY_LIMIT` (Salesforce Task.Description is a 32,000-character long text area),
  `HTML_LIMIT` (HubSpot text properties hold 65,536 characters).
"""

from __future__ import annotations

import html
import re

__all__ = [
    "BODY_LIMIT",
    "HTML_LIMIT",
    "SUBJECT_LIMIT",
    "cut",
    "html_text",
    "plain_text",
    "reflow",
]

SUBJECT_LIMIT = 255
BODY_LIMIT = 32_000
HTML_LIMIT = 65_536
ELLIPSIS = "…"

_BIDI = "\u202a-\u202e\u2066-\u2069"
_LINE_CONTROLS = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_BODY_CONTROLS = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")
_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")  # a list item keeps its own line


def cut(text: str, limit: int) -> str:
    """`text` of at most `limit` characters, the last an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def plain_text(text: str, *, multiline: bool, limit: int | None = None) -> str:
    """`text` without control characters (see the module docstring), cut to `limit`."""
    if multiline:
        text = _BODY_CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    else:
        text = _LINE_CONTROLS.sub(" ", text)
    return text if limit is None else cut(text, limit)


def reflow(text: str) -> str:
    """Paragraphs (split at blank lines) as one line each, list items on lines of their own,
    no trailing spaces or blank lines at either end."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip("\n")):
        lines: list[str] = []
        for raw in block.split("\n"):
            line = raw.rstrip()
            if lines and line and not _ITEM.match(line):
                lines[-1] = f"{lines[-1]} {line.strip()}"
            elif line:
                lines.append(line)
        if lines:
            paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def html_text(text: str, limit: int = HTML_LIMIT) -> str:
    """Plain `text` as HTML: escaped, a ``<p>`` per paragraph, line breaks within one as
    ``<br>``, at most `limit` characters."""
    clean = plain_text(text, multiline=True, limit=limit)
    escaped = "".join(f"<p>{_html(p)}</p>" for p in clean.split("\n\n")) if clean else ""
    if len(escaped) <= limit:
        return escaped
    pieces: list[str] = []
    size = 0
    for char in clean:  # the longest start whose HTML fits, then the ellipsis
        piece = _html(char)
        if size + len(piece) > limit - 1:
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces) + ELLIPSIS


def _html(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "<br>")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 rule`, `2 rules`: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
