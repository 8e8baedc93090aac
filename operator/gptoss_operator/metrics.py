"""The operator's own Prometheus metrics, served on their own port (`run --metrics-port`).

Kopf's liveness server answers one path only, so /metrics has its own HTTP server
(prometheus_client's, in a daemon thread). The controller, the Kubernetes client and the
watchdog call the small functions below at a few well-delimited places; everything that is a
level rather than an event (queue depth, per-resource phase and replicas, leadership) is read at
scrape time from the objects that hold it, so nothing here runs while nobody scrapes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, Protocol, TypeVar

from prometheus_client import (
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
PREFIX = "gptoss_operator"
PHASES = ("Pending", "Progressing", "Ready", "Degraded", "Failed")

RECONCILES = Counter(
    f"{PREFIX}_reconciles",
    "Reconciles run, by result (success, or error: an outage or a bug, retried with backoff).",
    ["result"],
)
RECONCILE_SECONDS = Histogram(
    f"{PREFIX}_reconcile_duration_seconds",
    "Time of one reconcile: plan, dry-runs, writes and the status write.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
WRITES = Counter(
    f"{PREFIX}_writes",
    "Writes the apiserver accepted, by kind and verb (apply, replace, delete, patch, create).",
    ["kind", "verb"],
)
DRY_RUNS = Counter(
    f"{PREFIX}_dry_runs",
    "Server-side dry-run applies, by kind (asked where a cached child differs from the plan).",
    ["kind"],
)
API_ERRORS = Counter(
    f"{PREFIX}_api_errors",
    "Kubernetes API calls that failed, by HTTP status (0: the apiserver was not reached).",
    ["status"],
)
RESYNCS = Counter(
    f"{PREFIX}_watch_resyncs",
    "Full re-lists of every watched kind by the watchdog (periodic, and after an outage).",
)
GHOSTED = Counter(
    f"{PREFIX}_watch_resync_repairs",
    "GptOssDeployments whose cached view a re-list corrected (objects deleted while a watch "
    "was away).",
)
RECONNECTS = Counter(
    f"{PREFIX}_apiserver_returns",
    "Times the apiserver answered /readyz again after being unreachable (the watches restart).",
)


# No *_created series: they would double every counter for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]
P = ParamSpec("P")
R = TypeVar("R")


def timed(reconcile: Callable[P, R]) -> Callable[P, R]:
    """`reconcile` counted by result and timed."""

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        start = time.perf_counter()
        try:
            result = reconcile(*args, **kwargs)
        except Exception:
            RECONCILES.labels("error").inc()
            raise
        finally:
            RECONCILE_SECONDS.observe(time.perf_counter() - start)
        RECONCILES.labels("success").inc()
        return result

    return run


def wrote(kind: str, verb: str) -> None:
    WRITES.labels(kind, verb).inc()


def dry_run(kind: str) -> None:
    DRY_RUNS.labels(kind).inc()


def api_error(status: int) -> None:
    API_ERRORS.labels(str(status)).inc()


def resynced(repaired: int) -> None:
    RESYNCS.inc()
    GHOSTED.inc(repaired)


def apiserver_returned() -> None:
    RECONNECTS.inc()


class _Queue(Protocol):
    def queue_depth(self) -> tuple[int, int, int]: ...
    def resources(self) -> list[tuple[str, str]]: ...

    indexes: Mapping[str, Mapping[Any, Any]]


class _Leader(Protocol):
    leading: bool


class _Levels(Collector):
    """Levels read at scrape time: the work queue, each GptOssDeployment's status as the watch
    cache holds it, and leadership."""

    def __init__(self) -> None:
        self.controller: _Queue | None = None
        self.election: _Leader | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        # Scrapes run in the metrics server's thread while the event loop changes the queue and
        # the caches: a dict that changed size mid-read is read again.
        for attempt in range(3):
            try:
                return list(self._collect())
            except RuntimeError:
                if attempt == 2:
                    raise
        return []

    def _collect(self) -> Iterable[GaugeMetricFamily]:
        ctl = self.controller
        leader = GaugeMetricFamily(
            f"{PREFIX}_leader",
            "1 while this process may write (it holds the leader Lease, or runs without "
            "election), else 0.",
        )
        leader.add_metric([], 1.0 if self.election is None or self.election.leading else 0.0)
        yield leader
        if ctl is None:
            return
        running, waiting, scheduled = ctl.queue_depth()
        queue = GaugeMetricFamily(
            f"{PREFIX}_queue_depth",
            "GptOssDeployments with a reconcile running, requested and waiting, or scheduled "
            "for later (a backoff, a settling spec edit).",
            labels=["state"],
        )
        for state, value in (("running", running), ("waiting", waiting), ("scheduled", scheduled)):
            queue.add_metric([state], value)
        yield queue
        yield from _resource_levels(ctl)


def _resource_levels(ctl: _Queue) -> Iterable[GaugeMetricFamily]:
    phase = GaugeMetricFamily(
        "gptoss_deployment_phase",
        "1 for the phase each GptOssDeployment is in (status.phase), 0 for the others.",
        labels=["namespace", "name", "phase"],
    )
    ready = GaugeMetricFamily(
        "gptoss_deployment_ready_replicas",
        "Replicas whose vLLM answers /health (status.readyReplicas).",
        labels=["namespace", "name"],
    )
    desired = GaugeMetricFamily(
        "gptoss_deployment_desired_replicas",
        "Replicas asked for (spec.replicas: the scale subresource, set by hand or an autoscaler).",
        labels=["namespace", "name"],
    )
    index = ctl.indexes.get("gptoss_by_key", {})
    for key in ctl.resources():
        for cr in list(index.get(key, ()))[:1]:
            status = cr.get("status") or {}
            current = status.get("phase")
            for name in PHASES:
                phase.add_metric([*key, name], 1.0 if name == current else 0.0)
            ready.add_metric(list(key), float(status.get("readyReplicas") or 0))
            desired.add_metric(list(key), float((cr.get("spec") or {}).get("replicas", 1)))
    yield from (phase, ready, desired)


LEVELS = _Levels()
REGISTRY.register(LEVELS)


def watch(controller: _Queue | None = None, election: _Leader | None = None) -> None:
    """Report the levels of this controller (and leader election, when on)."""
    LEVELS.controller = controller
    LEVELS.election = election


def serve(address: str, port: int) -> None:
    """Serve /metrics on address:port in a daemon thread."""
    start_http_server(port, addr=address)
    log.info("serving metrics on %s:%d/metrics", address, port)
