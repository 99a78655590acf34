"""The page as a browser left it (Chromium's --dump-dom), read into a small tree with the
standard library, and what plotly drew in it: bars and markers per chart."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


@dataclass
class Node:
    """One element: its tag, attributes, children and the text directly inside it."""

    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> Iterator[Node]:
        """This element and every element under it, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        """Every element under this one (itself included) with this tag and class."""
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)
        ]

    def by_id(self, ident: str) -> Node:
        (found,) = [n for n in self.walk() if n.attrs.get("id") == ident]
        return found

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


def parse(html: str) -> Node:
    """The document tree of `html`."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def drawn_points(chart: Node, kind: str) -> int:
    """The bars (bar kinds and waterfall: `g.point` under a `.trace`) or line markers
    (`path.point` under a scatter `.trace`) plotly drew inside a chart's element."""
    total = 0
    for trace in chart.find("g", "trace"):
        if kind == "line":
            total += len(trace.find("path", "point"))
        else:
            total += len(trace.find("g", "point"))
    return total


def chromium() -> Path:
    """The browser the test drives; skipped (with why) when it is missing outside CI, where
    `.ci/run` installs it, so in CI a missing browser is a failure."""
    found = CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")
    if found:
        return Path(found)
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI: .ci/run should have installed it (apt-get)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")


def browse(page: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Chromium, headless, on a local file, with virtual time for the scripts to finish."""
    return subprocess.run(
        [
            str(chromium()),
            *("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"),
            "--virtual-time-budget=20000",
            "--run-all-compositor-stages-before-draw",
            *args,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def rendered(page: Path) -> Node:
    """The page's tree after its scripts ran."""
    result = browse(page, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    return parse(result.stdout)


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 4000) -> Path:
    """A PNG of the page as drawn."""
    result = browse(page, f"--screenshot={png}", f"--window-size={width},{height}")
    assert result.returncode == 0 and png.is_file(), result.stderr[-2000:]
    return png
