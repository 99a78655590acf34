"""The container image's recipe, checked without a container engine: hadolint finds nothing,
the build is multi-stage with the dependencies from the hash-pinned lock in a layer before the
code, the base image is pinned by version and digest, it runs as a non-root user with a health
check; the lock agrees with pyproject.toml; the docker-compose example refers to files that
exist and its Prometheus config is valid."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.promql import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
DEPLOY = ROOT / "deploy"
BASE = re.compile(r"python:3\.11\.\d+-slim(-\w+)?@sha256:[0-9a-f]{64}")


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        keyword, _, args = whole.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (what follows each FROM)."""
    found: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, args))
    return found


def _index(stage: list[tuple[str, str]], keyword: str, needle: str) -> int:
    hits = [i for i, (k, a) in enumerate(stage) if k == keyword and needle in a]
    assert hits, f"no {keyword} with {needle!r}"
    return hits[0]


def test_hadolint_finds_nothing() -> None:
    """hadolint (the Dockerfile linter) passes with no warning."""
    result = subprocess.run([tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_image_is_pinned_by_patch_version_and_digest() -> None:
    """Every FROM is the pinned base image (directly or through the PYTHON_IMAGE argument)."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    args = dict(a.split("=", 1) for k, a in instructions(text) if k == "ARG" and "=" in a)
    assert BASE.fullmatch(args["PYTHON_IMAGE"]), args["PYTHON_IMAGE"]
    for stage in stages(text):
        image = stage[0][1].split()[0]
        assert image == "${PYTHON_IMAGE}" or BASE.fullmatch(image), image


def test_dependencies_come_from_the_lock_in_a_layer_before_the_code() -> None:
    """The build stage installs requirements.lock with --require-hashes before copying src."""
    build, final = stages(DOCKERFILE.read_text(encoding="utf-8"))
    lock = _index(build, "COPY", "requirements.lock")
    install = _index(build, "RUN", "--require-hashes")
    code = _index(build, "COPY", "src")
    assert lock < install < code
    assert "-r requirements.lock" in build[install][1]
    assert "crmsync/sandbox" in build[_index(build, "RUN", "--no-deps /wheels")][1]
    # the image itself takes the finished environment, and installs nothing of its own
    assert _index(final, "COPY", "--from=build /opt/crmsync") >= 0
    assert not [a for k, a in final if k == "RUN" and "pip install" in a]


def test_the_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    """USER is set to a user other than root, and HEALTHCHECK asks /healthz."""
    final = stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]
    users = [a for k, a in final if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    (check,) = [a for k, a in final if k == "HEALTHCHECK"]
    assert "/healthz" in check
    assert "--format docker" in DOCKERFILE.read_text(encoding="utf-8")  # the buildah/podman note


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_the_lock_pins_every_dependency_with_hashes_and_no_sandbox() -> None:
    """Each runtime dependency of pyproject.toml is pinned (==) with hashes; the sandbox
    extra's packages are not in the lock."""
    project: Any = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    entries = re.split(r"\n(?=[a-z0-9])", "\n".join(x for x in lines if not x.startswith("#")))
    pinned = {}
    for entry in entries:
        head = entry.splitlines()[0]
        if "==" in head:
            pinned[_name(head)] = entry
    for dep in project["dependencies"]:
        name = _name(dep)
        assert name in pinned, f"{name} is not in requirements.lock: make the lock again"
        assert "--hash=sha256:" in pinned[name], name
    for dep in project["optional-dependencies"]["sandbox"]:
        assert _name(dep) not in pinned, f"{_name(dep)} (sandbox only) is in the lock"
    assert all("--hash=sha256:" in entry for entry in pinned.values())


def test_the_compose_example_refers_to_files_that_exist(tmp_path: Path) -> None:
    """crmsync, PostgreSQL, Prometheus and Grafana, each mounted file present; the Prometheus
    config (with its rule file where the container has it) passes `promtool check config`."""
    compose: Any = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    assert {"crmsync", "postgres", "prometheus", "grafana"} <= compose["services"].keys()
    mounts: dict[str, Path] = {}
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
                mounts[target] = DEPLOY / source
    assert (ROOT / compose["services"]["crmsync"]["build"]["context"].replace("..", ".")).is_dir()
    config: Any = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        assert mounts[rule_file] == DEPLOY / "prometheus" / "crmsync-rules.yaml"
    assert mounts["/var/lib/grafana/dashboards/crmsync.json"] == DEPLOY / "grafana" / "crmsync.json"
    promtool = tool("promtool")
    shutil.copy(DEPLOY / "prometheus" / "crmsync-rules.yaml", tmp_path / "crmsync-rules.yaml")
    config["rule_files"] = ["crmsync-rules.yaml"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
