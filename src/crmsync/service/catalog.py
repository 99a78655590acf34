"""The workflow files the service runs, reloaded while it runs.

Each refresh reads every file of the workflow folder; a file whose bytes changed is checked in
full (as `crmsync validate` does). A good change replaces the workflow from its next run on; an
invalid one is refused (logged as `workflow.reload_failed`, counted in a metric) and the last good
version keeps running. Each good version is kept as a snapshot file, which is what the jobs run,
so an edit in progress never reaches a run half-written.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from crmsync.app.modes import Mode, effective_mode
from crmsync.app.plan import mappings
from crmsync.config import Config
from crmsync.errors import InvalidInput
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.service.metrics import Metrics
from crmsync.workflows.load import LoadedWorkflow, load_workflow
from crmsync.workflows.schema import Schedule

log = structlog.get_logger("crmsync.service")


@dataclass(frozen=True)
class WorkflowVersion:
    """The last good version of one workflow file."""

    name: str
    file: Path  # the admin's file
    snapshot: Path  # its checked content, which jobs run
    digest: str
    mode: str  # the effective mode (crmsync.app.modes), not only the file's
    schedule: Schedule | None
    mode_source: str = "file"
    scope: tuple[str, ...] = ()  # the connections it names (none: every connection)


@dataclass
class _FileState:
    digest: str
    good: bool
    name: str | None = None


def service_catalog(config: Config, metrics: Metrics) -> WorkflowCatalog:
    """The workflows of the config's folder as a `crmsync run` worker sees them: their good
    versions kept in a fresh temporary folder (`snapshots`; the worker removes it at exit),
    each workflow's mode as the config decides it."""
    return WorkflowCatalog(
        config.workflow_dir(),
        mappings(config),
        Path(tempfile.mkdtemp(prefix="crmsync-workflows-")),
        metrics,
        mode_of=functools.partial(effective_mode, config),
    )


class WorkflowCatalog:
    """The workflows of one folder, by name, as of the last refresh."""

    def __init__(
        self,
        folder: Path,
        connections: Mapping[str, CrmMapping],
        snapshots: Path,
        metrics: Metrics,
        mode_of: Callable[[LoadedWorkflow], Mode] | None = None,
    ) -> None:
        """`mode_of` decides a loaded workflow's effective mode (the service passes the
        config's `effective_mode`); without it, the file's mode counts."""
        self.folder = folder
        self._mode_of = mode_of or (lambda wf: effective_mode(None, wf))
        self._connections = connections
        self.snapshots = snapshots
        self._metrics = metrics
        self._files: dict[Path, _FileState] = {}
        self._versions: dict[str, WorkflowVersion] = {}
        self._lock = threading.Lock()
        self._missing_logged = False

    def get(self, name: str) -> WorkflowVersion | None:
        """The workflow's last good version, or None when no file defines it (any more)."""
        with self._lock:
            return self._versions.get(name)

    def versions(self) -> dict[str, WorkflowVersion]:
        """Every workflow's last good version, by name."""
        with self._lock:
            return dict(self._versions)

    def refresh(self) -> bool:
        """Read the folder again; True when workflows appeared, went or changed schedule."""
        with self._lock:
            before = {n: (v.schedule, v.file) for n, v in self._versions.items()}
            self._refresh()
            after = {n: (v.schedule, v.file) for n, v in self._versions.items()}
            self._metrics.invalid_files.set(sum(1 for f in self._files.values() if not f.good))
            return before != after

    def _refresh(self) -> None:
        files = self._list()
        for gone in [p for p in self._files if p not in files]:
            state = self._files.pop(gone)
            if state.name is not None and self._owner(state.name) == gone:
                del self._versions[state.name]
                log.info("workflow.removed", file=str(gone), workflow=state.name)
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as e:  # removed or unreadable since listed: try again next time
                log.warning("workflow.unreadable", file=str(path), error=e.strerror or str(e))
                continue
            digest = hashlib.sha256(data).hexdigest()
            known = self._files.get(path)
            if known is not None and known.digest == digest:
                continue
            self._load(path, data, digest, known)

    def _list(self) -> list[Path]:
        if not self.folder.is_dir():
            if not self._missing_logged:
                log.warning("workflow.folder_missing", folder=str(self.folder))
                self._missing_logged = True
            return []
        self._missing_logged = False
        return sorted([*self.folder.glob("*.yaml"), *self.folder.glob("*.yml")])

    def _owner(self, name: str) -> Path | None:
        version = self._versions.get(name)
        return version.file if version else None

    def _load(self, path: Path, data: bytes, digest: str, known: _FileState | None) -> None:
        # Checked under a name of its own, then kept under one per (file, content): a version
        # a running job uses is never overwritten or removed.
        candidate = self.snapshots / f"candidate-{uuid.uuid4().hex}.yaml"
        candidate.write_bytes(data)
        try:
            loaded = load_workflow(candidate, connections=self._connections)
            owner = self._owner(loaded.name)
            if owner is not None and owner != path:
                raise InvalidInput(f"{path}: workflow name '{loaded.name}' is also used by {owner}")
        except InvalidInput as e:
            candidate.unlink(missing_ok=True)
            error = str(e).replace(str(candidate), str(path))
            self._files[path] = _FileState(digest, False, known.name if known else None)
            self._metrics.reload_errors.labels(str(path)).inc()
            log.error(
                "workflow.reload_failed",
                file=str(path),
                error=error,
                kept_last_good=known is not None and known.name in self._versions,
            )
            return
        key = hashlib.sha256(f"{path}\0{digest}".encode()).hexdigest()[:24]
        snapshot = candidate.replace(self.snapshots / f"{key}.yaml")
        wf = loaded.workflow
        old = known.name if known is not None else None
        if old is not None and old != wf.name and self._owner(old) == path:
            del self._versions[old]  # renamed inside the same file
        self._files[path] = _FileState(digest, True, wf.name)
        mode = self._mode_of(loaded)
        self._versions[wf.name] = WorkflowVersion(
            wf.name,
            path,
            snapshot,
            digest,
            mode.mode,
            wf.schedule,
            mode.source,
            tuple(wf.scope.connections or ()),
        )
        self._metrics.set_mode(wf.name, mode.mode, mode.source)
        scope = wf.scope.connections or list(self._connections)
        self._metrics.known_workflow(wf.name, str(path), scope)
        log.info(
            "workflow.loaded" if known is None else "workflow.reloaded",
            file=str(path),
            workflow=wf.name,
            mode=mode.mode,
            mode_source=mode.source,
            rules=len(wf.rules),
        )
