"""Hostile workflow and config files: `crmsync validate` refuses each with one exact line and
exit code 2, within 20 seconds and 512 MB, never crashing, hanging or blowing up.

Every file in tests/data/hostile/files/ says on its first line what the command prints for it:
`# expect: <line>:<col>: <message>` (the message after the file path). Optional header lines:
`# run: validate --config` passes the file as the service config instead of a workflow file;
`# expand: @@ <count> <json string>` stands for a file too big to keep: the driver writes the
file with `@@` replaced by the string repeated `count` times (header lines kept, so positions
hold). The commands run in a child process with a memory cap, since the inputs are built to
overflow stacks, exhaust memory or spin for hours: one child checks the whole corpus (one start-up,
not one per file), and should it die or hang, each file is checked again in a child of its own
to name the culprit.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_DIR = ROOT / "tests" / "data" / "hostile" / "files"
HOSTILE = sorted(HOSTILE_DIR.glob("*.yaml"))
TIMEOUT_SECONDS = 20
MEMORY_BYTES = 512 * 1024 * 1024


def header(path: Path) -> tuple[str, dict[str, str]]:
    """The `# expect:` text of a hostile file and its other `# key: value` header lines."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("# expect: "), f"{path.name} has no '# expect:' first line"
    extra: dict[str, str] = {}
    for line in lines[1:3]:
        if line.startswith(("# run: ", "# expand: ")):
            key, _, value = line[2:].partition(": ")
            extra[key] = value
    return lines[0].removeprefix("# expect: "), extra


def materialize(path: Path, expand: str | None, folder: Path) -> Path:
    """The file to check: `path` itself, or a copy with its `@@` expanded in `folder`."""
    if expand is None:
        return path
    marker, count, unit = expand.split(" ", 2)
    text = path.read_text(encoding="utf-8").replace(marker, json.loads(unit) * int(count))
    target = folder / path.name
    target.write_text(text, encoding="utf-8")
    return target


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def crmsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`crmsync <args>` in a child process capped at 512 MB and 20 seconds."""
    env = {k: v for k, v in os.environ.items() if k != "CRMSYNC_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "crmsync.cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        preexec_fn=_limit_memory,
        cwd=cwd,
        env=env,
        check=False,
    )


def validate_args(path: Path, run: str | None) -> list[str]:
    """The arguments of `crmsync` checking a hostile file, as a workflow or as the config."""
    assert run in (None, "validate --config"), f"unknown '# run:' {run!r}"
    return ["validate", "--config", str(path)] if run else ["validate", str(path)]


# Runs `crmsync` in-process (click's runner) once per argument list read from stdin as JSON,
# printing one JSON line per run: its exit code and what it wrote to stderr.
_BATCH = """
import json, sys
from click.testing import CliRunner
from crmsync.cli import main
for args in json.load(sys.stdin):
    result = CliRunner().invoke(main, args)
    print(json.dumps([result.exit_code, result.stderr]), flush=True)
"""


def run_validate(args: list[str], cwd: Path) -> tuple[int, str]:
    """`crmsync <args>` in a child process of its own: (exit code, stderr)."""
    result = crmsync(*args, cwd=cwd)
    return result.returncode, result.stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, tuple[Path, tuple[int, str]]]:
    """Every hostile file: the file checked (expanded where asked) and (exit code, stderr).

    One child checks them all in turn; if it dies or hangs (a regression), every file is
    checked again in a child of its own, so each test names its own outcome.
    """
    folder = tmp_path_factory.mktemp("hostile")
    targets: dict[Path, tuple[Path, list[str]]] = {}
    for path in HOSTILE:
        _, extra = header(path)
        target = materialize(path, extra.get("expand"), folder)
        targets[path] = (target, validate_args(target, extra.get("run")))
    batch = [args for _, args in targets.values()]
    try:
        child = subprocess.run(
            [sys.executable, "-c", _BATCH],
            input=json.dumps(batch),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            preexec_fn=_limit_memory,
            cwd=folder,
            env={k: v for k, v in os.environ.items() if k != "CRMSYNC_CONFIG"},
            check=False,
        )
        lines = child.stdout.splitlines()
    except subprocess.TimeoutExpired:
        lines = []
    if len(lines) == len(batch):
        results = [(int(code), str(err)) for code, err in map(json.loads, lines)]
    else:
        results = [_isolated(args, folder) for args in batch]
    pairs = zip(targets.items(), results, strict=True)
    return {path: (target, result) for (path, (target, _)), result in pairs}


def _isolated(args: list[str], cwd: Path) -> tuple[int, str]:
    try:
        return run_validate(args, cwd)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT_SECONDS} s"


@pytest.mark.slow  # one child for the whole corpus: about 5 s
@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_hostile_file_gives_one_exact_line(
    path: Path, corpus: dict[Path, tuple[Path, tuple[int, str]]]
) -> None:
    """A hostile file exits 2 with exactly its expected one-line error, in bounded time and
    memory, with no traceback."""
    expect, _ = header(path)
    target, (code, stderr) = corpus[path]

    assert "Traceback" not in stderr
    assert code == 2, (code, stderr[-2000:])
    assert stderr.splitlines() == [f"crmsync: error: {target}:{expect}"]


def test_a_file_over_one_mib_is_refused_unread(tmp_path: Path) -> None:
    """A 2 MB workflow file is refused by its size at 1:1, before YAML reads any of it."""
    path = tmp_path / "huge.yaml"
    with path.open("w", encoding="utf-8") as out:
        out.write("name: huge\nrules:\n")
        out.write("  - {id: r, kind: custom, condition: 'is_closed', title: t}\n" * 35_000)
    assert path.stat().st_size > 2_000_000

    result = crmsync("validate", str(path), cwd=tmp_path)

    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        f"crmsync: error: {path}:1:1: file is larger than 1 MiB (1,048,576 bytes); "
        "split it or shorten it"
    ]


def test_corpus_has_at_least_20_files() -> None:
    """The hostile-file corpus holds at least 20 files, each with an expect line."""
    assert len(HOSTILE) >= 20
    for path in HOSTILE:
        header(path)
