"""Several equal workers on one PostgreSQL queue (issue 19), in one process: they share the
jobs, a key never runs twice at once, a dead worker's job is taken over, and the worker it was
taken from can no longer write."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from crmsync.config import load_config
from crmsync.model.records import Cursor
from crmsync.sandbox import Sandbox
from crmsync.service.queue import conninfo
from crmsync.service.queue_worker import QueueWorker
from crmsync.store import Store, fences
from tests.service.support import write_config
from tests.store.builders import opp

pytestmark = pytest.mark.slow

Span = tuple[str, str, float, float]  # worker, key, started, ended


class RecordingWorker(QueueWorker):
    """A worker that notes when each of its jobs ran (for the overlap checks)."""

    def __init__(self, *args: object, spans: list[Span], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.spans = spans

    def run_unit(self, kind: str, key: str, args: dict[str, str], due: str, job_id: int) -> None:
        started = time.monotonic()
        try:
            super().run_unit(kind, key, args, due, job_id)
        finally:
            self.spans.append((self.name, key, started, time.monotonic()))


@contextmanager
def workers(config: Path, count: int, spans: list[Span]) -> Iterator[list[RecordingWorker]]:
    loaded = load_config(config)
    pool = [RecordingWorker(config, loaded, name=f"w{i}", spans=spans) for i in range(count)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in pool]
    for t in threads:
        t.start()
    try:
        yield pool
    finally:
        for w in pool:
            w.stop()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a worker did not stop"


def wait_for(check: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _service(**extra: object) -> dict[str, object]:
    return {
        "scheduler": "auto",  # PostgreSQL: the queue
        "tick_seconds": 1,
        "stalled_after_seconds": 15,
        "workflow_interval_seconds": 2,
        "max_parallel_jobs": 2,
        **extra,
    }


def test_workers_share_the_jobs_and_a_key_runs_once_at_a_time(
    tmp_path: Path, sandbox: Sandbox, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans: list[Span] = []
    taken: list[str] = []  # the keys of the jobs that took a token (one skipped while the
    real_take = fences.take  # workers stop takes none, but is a span all the same)

    def take(store: Store, key: str, holder: str, now: datetime) -> fences.Fence:
        fence = real_take(store, key, holder, now)
        taken.append(key)
        return fence

    monkeypatch.setattr(fences, "take", take)
    config = write_config(tmp_path, sandbox, pg_url, service=_service())
    with Store.open(pg_url) as store:  # a `crmsync sync` by hand, under way all along
        by_hand = store.start_run("hs", "deals", "incremental", datetime.now(UTC))
    with workers(config, 3, spans) as pool:

        def enough() -> bool:
            keys = [s[1] for s in spans]
            return all(keys.count(f"sync:{c}:opportunity") >= 3 for c in ("sf", "hs")) and all(
                f"workflow:{w}:{c}" in keys
                for w in ("pipeline-hygiene", "stage-gates")
                for c in ("sf", "hs")
            )

        wait_for(enough)
        ready, body = pool[0].readiness()
        assert ready, body
        assert body["role"] == "worker"
        assert set(body["checks"]) == {"database", "queue", "sync:sf", "sync:hs"}
    by_key: dict[str, list[Span]] = {}
    for span in spans:
        by_key.setdefault(span[1], []).append(span)
    for key, runs in by_key.items():
        runs.sort(key=lambda s: s[2])
        for a, b in itertools.pairwise(runs):
            assert a[3] <= b[2], f"{key} ran twice at once ({a[0]} and {b[0]})"
    assert len({s[0] for s in spans}) >= 2, "one worker ran everything"
    with Store.open(pg_url) as store:
        runs_ = store.runs(limit=500)
        assert [r["status"] for r in runs_ if r["id"] == by_hand] == ["running"]  # untouched
        runs_ = [r for r in runs_ if r["id"] != by_hand]
        for run in runs_:  # a sync under way when the workers stopped ends `stopped`
            assert run["status"] == "ok" or "shutdown" in (run["error"] or ""), run
        key = "sync:sf:opportunity"
        assert fences.newest(store, key) == taken.count(key)  # a token a run, one after another
        assert 3 <= taken.count(key) <= len(by_key[key])


@pytest.mark.parametrize("pruned", [False, True], ids=["stalled", "already-pruned"])
def test_a_dead_workers_job_is_taken_over_and_the_dead_worker_cannot_write(
    tmp_path: Path, sandbox: Sandbox, pg_url: str, pruned: bool
) -> None:
    """Its job is taken over, whether its worker is still listed (a stale heartbeat) or was
    pruned already (its job then has no worker id: the log says so, not `null`)."""
    from structlog.testing import capture_logs

    key = "sync:sf:opportunity"
    config = write_config(tmp_path, sandbox, pg_url, service=_service(sync_interval_seconds=3600))
    load_config(config)
    with Store.open(pg_url) as store:  # installs the queue
        dead = fences.take(store, key, "dead-worker:1", datetime.now(UTC))
        left = store.start_run("sf", "Opportunity", "full", datetime.now(UTC))  # it died in it
    with psycopg.connect(conninfo(pg_url), autocommit=True) as db:
        # a worker that took the sync and died: its heartbeat an hour old, its job `doing`
        worker_id = db.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) "
            "VALUES (now() - interval '1 hour') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        if pruned:  # another worker removed its record: the job keeps no worker id
            db.execute("DELETE FROM procrastinate_workers WHERE id = %s", (worker_id,))
        db.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args, "
            "status, worker_id) VALUES ('default', 'crmsync.sync', %s, %s, %s, 'doing', %s)",
            (key, key, psycopg.types.json.Jsonb(
                {"key": key, "due": datetime.now(UTC).isoformat(), "connection": "sf"}
            ), None if pruned else worker_id),
        )  # fmt: skip
        # its mark says it was queued just now, so the tick does not queue it again
        db.execute("INSERT INTO schedule_marks (key, due_at) VALUES (%s, now())", (key,))
    spans: list[Span] = []
    with capture_logs() as logs, workers(config, 1, spans) as pool:
        wait_for(lambda: key in [s[1] for s in spans])
        takeovers = pool[0].queue_metrics.takeovers._value.get()
    assert takeovers >= 1
    (said,) = [e for e in logs if e["event"] == "job.taken_over" and e["key"] == key]
    # a stalled worker may be pruned (by the live one) before its job is looked at
    assert said["dead_worker"] in (["unknown (already pruned)"] + ([] if pruned else [worker_id]))
    with Store.open(pg_url) as store:
        assert store.count("sf") == 250  # the live worker ran the dead one's sync
        assert fences.newest(store, key) == dead.token + 1
        cursor = store.get_cursor("sf", "Opportunity")
        with fences.fenced(dead), pytest.raises(fences.FenceLost):  # the dead one wakes up
            store.apply_batch(
                "sf",
                "Opportunity",
                opportunities=[opp("006WOKE", connection="sf")],
                cursor=Cursor("9999", ()),
                observed_at=datetime.now(UTC),
            )
        assert store.get_cursor("sf", "Opportunity") == cursor
        assert store.get("sf:006WOKE") is None
        (cut,) = [r for r in store.runs("sf") if r["id"] == left]
        assert cut["status"] == "failed" and "interrupted" in cut["error"]


def test_queue_schema_is_installed_by_the_migrations(pg_url: str) -> None:
    with Store.open(pg_url):
        pass
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert {"procrastinate_jobs", "procrastinate_workers", "fences", "schedule_marks"} <= tables


class BusyWorker(QueueWorker):
    """A worker whose jobs hold their slot until released, and which notes its ticks."""

    def __init__(self, *args: object, release: threading.Event, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.release = release
        self.busy = threading.Event()
        self.ticks: list[float] = []

    def run_unit(self, kind: str, key: str, args: dict[str, str], due: str, job_id: int) -> None:
        self.busy.set()
        self.release.wait(60)

    def tick(self, defer: Callable[..., set[str]]) -> None:
        self.ticks.append(time.monotonic())
        super().tick(defer)


def test_the_tick_runs_while_every_job_slot_is_busy(
    tmp_path: Path, sandbox: Sandbox, pg_url: str
) -> None:
    """The tick has slots of its own: a worker whose job slots are all taken still queues
    what is due (it was queued behind the jobs it queues, and ran 20-30 s late under load)."""
    config = write_config(tmp_path, sandbox, pg_url, service=_service(max_parallel_jobs=1))
    release = threading.Event()
    worker = BusyWorker(config, load_config(config), name="w0", release=release)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker.busy.wait(60), "no job started"
        since = time.monotonic()
        wait_for(lambda: sum(t > since for t in worker.ticks) >= 3, seconds=20)
    finally:
        release.set()
        worker.stop()
        thread.join(60)
    assert not thread.is_alive(), "the worker did not stop"
