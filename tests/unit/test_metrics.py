"""The operator's /metrics as Prometheus parses it: reconcile counts and durations, the work
queue and each resource's phase and replicas read from the watch cache at scrape time.
The e2e test (tests/e2e/test_operator_metrics.py) scrapes the running operator."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gptoss_operator import metrics
from gptoss_operator.controller import Controller
from support.fakekube import FakeKube


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(REGISTRY).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metric: str, **labels: str) -> float:
    return scrape().get((metric, tuple(sorted(labels.items()))), 0.0)


def test_timed_counts_results_and_observes_durations() -> None:
    ok, failed = (
        value("gptoss_operator_reconciles_total", result="success"),
        value("gptoss_operator_reconciles_total", result="error"),
    )
    count = value("gptoss_operator_reconcile_duration_seconds_count")

    def boom() -> None:
        raise RuntimeError("outage")

    assert metrics.timed(lambda: 7)() == 7
    with pytest.raises(RuntimeError):
        metrics.timed(boom)()
    assert value("gptoss_operator_reconciles_total", result="success") == ok + 1
    assert value("gptoss_operator_reconciles_total", result="error") == failed + 1
    assert value("gptoss_operator_reconcile_duration_seconds_count") == count + 2


def cr(name: str, phase: str, ready: int, replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml", "uid": name},
        "spec": {"replicas": replicas},
        "status": {"phase": phase, "readyReplicas": ready},
    }


def test_levels_come_from_the_watch_cache_and_the_queue() -> None:
    ctl = Controller(FakeKube(cr("a", "Ready", 2, 2)))  # type: ignore[arg-type]
    ctl.bind(
        {
            "gptoss_by_key": {
                ("ml", "a"): [cr("a", "Ready", 2, 2)],
                ("ml", "b"): [cr("b", "Degraded", 0, 1)],
            }
        }
    )
    ctl._state(("ml", "a")).dirty = True
    metrics.watch(ctl)
    try:
        assert value("gptoss_deployment_phase", namespace="ml", name="a", phase="Ready") == 1
        assert value("gptoss_deployment_phase", namespace="ml", name="a", phase="Degraded") == 0
        assert value("gptoss_deployment_phase", namespace="ml", name="b", phase="Degraded") == 1
        assert value("gptoss_deployment_ready_replicas", namespace="ml", name="a") == 2
        assert value("gptoss_deployment_desired_replicas", namespace="ml", name="b") == 1
        assert value("gptoss_operator_queue_depth", state="waiting") == 1
        assert value("gptoss_operator_queue_depth", state="running") == 0
        assert value("gptoss_operator_leader") == 1
    finally:
        metrics.watch(None)


def test_leader_gauge_follows_the_election() -> None:
    class Election:
        leading = False

    metrics.watch(None, Election())
    try:
        assert value("gptoss_operator_leader") == 0
    finally:
        metrics.watch(None)
