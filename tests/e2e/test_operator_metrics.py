"""The running operator's /metrics, parsed by prometheus_client's own parser, move with what the
operator does: reconciles and writes by kind and verb as a resource is created and scaled, and
each resource's phase and replicas."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.gptoss import apply, manifest, wait_condition
from support.operator import OperatorProcess
from support.testbed import Testbed, wait_until

pytestmark = pytest.mark.testbed
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(operator: OperatorProcess) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(operator.scrape())
        for s in family.samples
    }


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_creates_and_changes(
    testbed: Testbed, operator: OperatorProcess, namespace: str
) -> None:
    before = scrape(operator)
    assert value(before, "gptoss_operator_leader") == 1
    apply(testbed, namespace, manifest("metered", replicas=1))
    wait_condition(testbed, namespace, "metered", "Ready", timeout=60)

    def ready(count: int) -> Samples | None:
        now = scrape(operator)
        phase = value(
            now, "gptoss_deployment_phase", namespace=namespace, name="metered", phase="Ready"
        )
        got = value(now, "gptoss_deployment_ready_replicas", namespace=namespace, name="metered")
        return now if (phase, got) == (1, count) else None

    created = wait_until(lambda: ready(1), 30, "the Ready phase and 1 ready replica in /metrics")
    for kind in ("Deployment", "Service"):
        assert value(created, "gptoss_operator_writes_total", kind=kind, verb="apply") >= (
            value(before, "gptoss_operator_writes_total", kind=kind, verb="apply") + 1
        ), kind
    status = (
        "gptoss_operator_writes_total",
        (("kind", "GptOssDeployment/status"), ("verb", "patch")),
    )
    assert created.get(status, 0) > before.get(status, 0)
    reconciles = ("gptoss_operator_reconciles_total", (("result", "success"),))
    assert created[reconciles] > before.get(reconciles, 0)
    count = ("gptoss_operator_reconcile_duration_seconds_count", ())
    assert created[count] > before.get(count, 0)
    assert (
        value(
            created,
            "gptoss_deployment_phase",
            namespace=namespace,
            name="metered",
            phase="Degraded",
        )
        == 0
    )

    testbed.kubectl("-n", namespace, "scale", "gptossdeployment/metered", "--replicas=2")
    scaled = wait_until(lambda: ready(2), 60, "2 ready replicas in /metrics")
    assert (
        value(scaled, "gptoss_deployment_desired_replicas", namespace=namespace, name="metered")
        == 2
    )
    deployment = ("gptoss_operator_writes_total", (("kind", "Deployment"), ("verb", "apply")))
    assert scaled[deployment] > created[deployment]
