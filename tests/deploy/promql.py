"""The PromQL crmsync ships (the dashboard's panels, the alert rules, the README's examples),
read from their files, and the metric selectors inside each expression."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "crmsync.json"
RULES = ROOT / "deploy" / "prometheus" / "crmsync-rules.yaml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "crmsync-rules.test.yaml"
README = ROOT / "README.md"

# Grafana's variables, as an all-values choice would set them.
VARIABLES = {"$__rate_interval": "1m", "$connection": ".*", "$workflow": ".*", "$job": ".*"}
# Labels Prometheus adds to every scraped series (not in crmsync's own text).
TARGET_LABELS = {"job", "instance"}
# Series Prometheus makes itself for each target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PREFIXES = ("crmsync_", "process_", "python_")

_SELECTOR = re.compile(
    r"(?<![\w:])(?P<name>(?:crmsync|process|python)_[a-zA-Z0-9_:]*|up)\b\s*(?P<labels>\{[^}]*\})?"
)
_MATCHER = re.compile(r'(?P<label>\w+)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>[^"]*)"')


@dataclass(frozen=True)
class Selector:
    """One metric selector: `name{label op "value", ...}`."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]

    def text(self) -> str:
        inner = ", ".join(f'{lab}{op}"{val}"' for lab, op, val in self.matchers)
        return f"{self.name}{{{inner}}}" if inner else self.name


def expand(expr: str) -> str:
    """The expression with Grafana's variables set to their all-values choice."""
    for var, value in VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def selectors(expr: str) -> list[Selector]:
    """The metric selectors of one expression (after `expand`)."""
    out = []
    for m in _SELECTOR.finditer(expr):
        labels = m.group("labels") or ""
        matchers = tuple((x["label"], x["op"], x["value"]) for x in _MATCHER.finditer(labels))
        out.append(Selector(m.group("name"), matchers))
    return out


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard (panel targets and variable queries)."""
    data: Any = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in data["panels"] for t in p.get("targets", [])]
    for var in data["templating"]["list"]:
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((?P<sel>[^,]+),\s*\w+\)", query)
            assert inner, f"dashboard variable {var['name']}: unexpected query {query}"
            exprs.append(inner["sel"])
    return [expand(e) for e in exprs]


def rule_queries() -> list[str]:
    """The expression of every alert rule."""
    data: Any = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule["expr"] for group in data["groups"] for rule in group["rules"]]


def readme_queries() -> list[str]:
    """The README's PromQL examples: each line of its ```promql blocks (not comments)."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```promql\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def tool(name: str) -> str:
    """The path of a command CI installs (.ci/run); skipped outside CI when it is missing."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is missing in CI: .ci/run should have installed it")
    pytest.skip(f"{name} is not installed here; CI installs it")
