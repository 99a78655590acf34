"""The Prometheus alert rules: promtool accepts them, and their unit tests (synthetic series
through each alert) pass."""

from __future__ import annotations

import subprocess

from tests.deploy.promql import RULES, RULES_TEST, rule_queries, tool


def test_promtool_checks_the_rules() -> None:
    """`promtool check rules` finds every rule valid (syntax, PromQL, templates)."""
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_queries())} rules found" in result.stdout


def test_the_alerts_fire_when_they_should() -> None:
    """`promtool test rules`: each alert fires on the series that should raise it, with its
    labels and text, and stays quiet otherwise."""
    result = subprocess.run(
        [tool("promtool"), "test", "rules", str(RULES_TEST)],
        capture_output=True,
        text=True,
        cwd=RULES_TEST.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
