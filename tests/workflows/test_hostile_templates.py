"""Hostile task templates: `crmsync validate` refuses each with one exact line, and what only
fails at render time sets that deal's task aside while `crmsync test` says why.

Every file in tests/data/hostile/templates/ holds one hostile template and says on its first
line what `crmsync validate` prints for it: `# expect: <line>:<col>: <field>: <message>` (the
message after the file path). The files run in one child process with a time limit and a
memory cap: a template that hangs or eats memory fails the test instead of the test run.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_DIR = ROOT / "tests" / "data" / "hostile" / "templates"
HOSTILE = sorted(HOSTILE_DIR.glob("*.yaml"))
MEMORY_CAP = 1 << 30  # bytes of address space for the child
TIMEOUT = 60  # seconds for the whole corpus (a hang in one file fails them all)

# Runs `crmsync validate <file>` in-process for each file given, one JSON line per file.
VALIDATE_EACH = """
import json, sys
from click.testing import CliRunner
from crmsync.cli import main
for path in sys.argv[1:]:
    result = CliRunner().invoke(main, ["validate", path])
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    print(json.dumps([path, result.exit_code, result.stderr, result.stdout, crashed]), flush=True)
"""


def capped() -> None:
    """In the child: at most MEMORY_CAP of memory, so a bomb fails there and not here."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_child(args: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """`python <args>` under the memory cap and time limit, from the repository root."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=capped,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def outcomes() -> dict[str, list[Any]]:
    """What `crmsync validate` gave for each corpus file: exit code, stderr, stdout, crashed."""
    child = run_child(["-c", VALIDATE_EACH, *map(str, HOSTILE)])
    got = {}
    for line in child.stdout.splitlines():
        path, *rest = json.loads(line)
        got[path] = rest
    assert child.returncode == 0, child.stderr[-2000:]
    return got


def expected(path: Path) -> str:
    """The `# expect:` text on a corpus file's first line."""
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    assert first.startswith("# expect: "), f"{path.name} has no '# expect:' first line"
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_hostile_template_gives_one_exact_line(path: Path, outcomes: dict[str, list[Any]]) -> None:
    """A hostile template makes `crmsync validate` exit 2 with its expected line, promptly."""
    exit_code, stderr, stdout, crashed = outcomes[str(path)]
    assert not crashed, stderr
    assert exit_code == 2, stdout + stderr
    assert stderr.splitlines() == [f"crmsync: error: {path}:{expected(path)}"]
    assert stdout == ""


def test_corpus_has_at_least_20_files() -> None:
    """The hostile-template corpus holds at least 20 files, each with an expect line."""
    assert len(HOSTILE) >= 20
    for path in HOSTILE:
        expected(path)


# Rules whose task body only fails at render time, each on an example that fires it.
RENDER_TIME = {
    "power": "{{ 7**(9**amount) }}",
    "loops": "{% for a in name %}{% for b in name %}{% for c in name %}.{% endfor %}"
    "{% endfor %}{% endfor %}",
    "ranges": "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
    "doubling": "{% set ns = namespace(x=name) %}{% for i in range(60) %}"
    "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
    "replace": "{{ name|replace('x', name * 100) }}",
    "product": "{% set ns = namespace(x=amount|int) %}{% for i in range(40) %}"
    "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
    "money": "{{ (amount * 10**30)|money }}",
    "blocked": "{{ reasons['append']('x') }}",
    "fill": "{{ ('%s' * 3000)|format(*([name] * 3000)) }}",
    "strjoin": "{{ name.join([name] * 3000) }}",
    "mapjoin": "{{ ([name] * 3000)|map('upper')|join }}",
    "fine": "{{ (amount * 0.1)|money }} of {{ (amount * 10**22)|money }}",
}
RENDER_ERRORS = {
    "power": "the result of '**' is too large",
    "loops": "more than 10,000 loop iterations, calls and operations",
    "ranges": "more than 10,000 loop iterations, calls and operations",
    "doubling": "'~' would build a text longer than 100,000",
    "replace": "replace would build a text longer than 100,000",
    "product": "a product of more than 4,096 bits",
    "money": "money needs an amount below 1e30, got 1.234e+34",
    "blocked": "access to attribute 'append' of 'list' object is unsafe.",
    "fill": "format would build a text longer than 100,000",
    "strjoin": "join would build a value longer than 100,000",
    "mapjoin": "join would build a value longer than 100,000",
}


def test_templates_failing_at_render_time_fail_their_examples(tmp_path: Path) -> None:
    """`crmsync test` runs each render-time bomb within its budget: the example of each
    failing rule fails with one line naming the rule and the limit, the sound one passes."""
    rules = "".join(
        f"  - id: {rule}\n    kind: custom\n    condition: name.startsWith('{rule} ')\n"
        f"    actions:\n      task:\n        subject: Follow up\n        body: |-\n"
        f"          {body}\n"
        for rule, body in RENDER_TIME.items()
    )
    examples = "".join(
        f"  - name: {rule}\n    now: 2026-11-20T12:00:00Z\n"
        f"    opportunity: {{name: {rule} {'x' * 40}, amount: 12345}}\n    fires: [{rule}]\n"
        for rule in RENDER_TIME
    )
    path = tmp_path / "render-time.yaml"
    path.write_text(f"name: render-time\nrules:\n{rules}examples:\n{examples}", encoding="utf-8")
    child = run_child(["-m", "crmsync", "test", str(path)])
    lines = child.stdout.splitlines()
    assert child.returncode == 1, child.stdout + child.stderr
    assert "Traceback" not in child.stderr
    assert "PASS render-time: fine" in lines
    for rule, error in RENDER_ERRORS.items():
        assert f"FAIL render-time: {rule}" in lines
        assert f"     {rule}: task cannot render: {error}" in lines, (rule, lines)
    assert lines[-1] == f"1 passed, {len(RENDER_ERRORS)} failed"
