"""The metrics of a worker that shares a queue with others (`crmsync run` on PostgreSQL), by
kind of work (sync, workflow, report): what waits, what runs, how late it starts, and what the
safety nets caught (jobs taken over from dead workers, writes refused by fencing)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

KINDS = ("sync", "workflow", "report")
# What a worker on the shared queue exports besides crmsync.service.metrics.SERIES (less
# crmsync_lease_held: it has no lease), every name with its labels, as the README lists them.
QUEUE_SERIES: dict[str, tuple[str, ...]] = {
    "crmsync_queue_depth": ("kind", "status"),
    "crmsync_job_latency_seconds": ("kind",),
    "crmsync_jobs_running": ("kind",),
    "crmsync_jobs_queued_total": ("kind", "outcome"),
    "crmsync_job_takeovers_total": (),
    "crmsync_fencing_refusals_total": ("kind",),
}
STATUSES = ("todo", "doing")
# from a tick's period to a night's downtime
LATENCY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)


class QueueMetrics:
    """Registered on the worker's registry next to crmsync.service.metrics.Metrics."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.queue_depth = Gauge(
            "crmsync_queue_depth", "Jobs in the shared queue, by kind and status (todo, doing)",
            ["kind", "status"], registry=r,
        )  # fmt: skip
        self.job_latency = Histogram(
            "crmsync_job_latency_seconds",
            "From a job's scheduled time to its start on this worker, by kind",
            ["kind"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.running = Gauge(
            "crmsync_jobs_running", "Jobs this worker runs now, by kind", ["kind"], registry=r
        )
        self.takeovers = Counter(
            "crmsync_job_takeovers",
            "Jobs of workers taken for dead that this worker put back in the queue",
            registry=r,
        )
        self.fencing_refusals = Counter(
            "crmsync_fencing_refusals",
            "Writes refused because another worker had taken the job over, by kind",
            ["kind"], registry=r,
        )  # fmt: skip
        self.queued = Counter(
            "crmsync_jobs_queued",
            "Jobs the tick queued on this worker, by kind and outcome (queued, coalesced, held)",
            ["kind", "outcome"], registry=r,
        )  # fmt: skip
        for kind in KINDS:
            self.job_latency.labels(kind)
            self.running.labels(kind).set(0)
            self.fencing_refusals.labels(kind)
            for status in STATUSES:
                self.queue_depth.labels(kind, status).set(0)
            for outcome in ("queued", "coalesced", "held"):
                self.queued.labels(kind, outcome)
