"""spec.autoscaling: the ScaledObject it renders (the query KEDA asks, how the HPA compares it),
what the operator does where KEDA is not installed, and status.autoscaler from KEDA's HPA.
KEDA itself scaling on these objects is tested on the test bed
(tests/e2e/test_keda_autoscaling.py)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from gptoss_operator.controller import Controller
from gptoss_operator.reconcile import Live, autoscaler_status
from gptoss_operator.render import render_children
from gptoss_operator.render.autoscaling import pod_selector, query
from gptoss_operator.validation import parse_spec
from support.fakekube import FakeKube

PROM = "http://prometheus-operated.monitoring.svc:9090"
BASE = {"model": {"name": "gpt-oss-20b"}, "accelerator": {"profile": "L40S"}}


def spec(**autoscaling: Any) -> dict[str, Any]:
    return {**BASE, "autoscaling": {"enabled": True, "prometheusAddress": PROM, **autoscaling}}


def scaled_object(body: dict[str, Any], name: str = "chat", ns: str = "ml") -> dict[str, Any]:
    children = render_children(name, ns, parse_spec(body))
    found = [c for c in children if c["kind"] == "ScaledObject"]
    assert len(found) == 1, [c["kind"] for c in children]
    return found[0]


def test_default_scales_on_waiting_requests_per_replica_with_a_long_scale_down() -> None:
    so = scaled_object(spec())
    s = so["spec"]
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert s["scaleTargetRef"] == {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "GptOssDeployment",
        "name": "chat",
    }
    assert (s["minReplicaCount"], s["maxReplicaCount"]) == (1, 2)
    (trigger,) = s["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"] == {
        "serverAddress": PROM,
        "query": 'sum(vllm:num_requests_waiting{namespace="ml",pod=~"chat-[a-z0-9]+-[a-z0-9]+"})',
        "threshold": "2",
        "activationThreshold": "0",
    }
    behavior = s["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 1200
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]
    assert so["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gptoss-operator"


@pytest.mark.parametrize(
    ("metric", "series", "kind", "threshold"),
    [
        ("KVCacheUsage", "vllm:kv_cache_usage_perc{", "AverageValue", "0.8"),
        ("TimeToFirstToken", "vllm:time_to_first_token_seconds_bucket{", "Value", "2"),
    ],
)
def test_alternative_metrics(metric: str, series: str, kind: str, threshold: str) -> None:
    (trigger,) = scaled_object(spec(metric=metric))["spec"]["triggers"]
    assert series in trigger["metadata"]["query"]
    assert trigger["metricType"] == kind
    assert trigger["metadata"]["threshold"] == threshold


def test_target_query_auth_and_scale_to_zero_are_passed_through() -> None:
    body = spec(
        minReplicas=0,
        target=0.5,
        query="sum(rate(gateway_requests_total[1m]))",
        activationTarget=0.1,
        idleSeconds=900,
        authenticationRef="prom-auth",
    )
    s = scaled_object(body)["spec"]
    (trigger,) = s["triggers"]
    assert trigger["metadata"]["query"] == "sum(rate(gateway_requests_total[1m]))"
    assert trigger["metadata"]["threshold"] == "0.5"
    assert trigger["metadata"]["activationThreshold"] == "0.1"
    assert trigger["authenticationRef"] == {"name": "prom-auth"}
    assert (s["minReplicaCount"], s["cooldownPeriod"]) == (0, 900)


def test_no_scaled_object_unless_enabled() -> None:
    body = {**BASE, "autoscaling": {"prometheusAddress": PROM}}
    assert "ScaledObject" not in {c["kind"] for c in render_children("c", "n", parse_spec(body))}


def test_the_pod_selector_does_not_match_a_resource_with_a_longer_name() -> None:
    found = re.fullmatch(r'namespace="ml",pod=~"(.+)"', pod_selector("chat", "ml"))
    assert found, pod_selector("chat", "ml")
    pattern = re.compile(found.group(1))
    assert pattern.fullmatch("chat-7d9f8b6c5d-x2kqz")
    assert not pattern.fullmatch("chat-big-7d9f8b6c5d-x2kqz")


def test_ttft_query_gives_zero_rather_than_nan_without_traffic() -> None:
    q = query("chat", "ml", parse_spec(spec(metric="TimeToFirstToken")))
    assert q.endswith("or vector(0)")
    assert "histogram_quantile(0.9," in q


# --- the controller where KEDA is absent ---------------------------------------------------------
def resource(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "GptOssDeployment",
        "metadata": {"name": "chat", "namespace": "ml", "uid": "u-1", "generation": 1},
        "spec": body,
    }


def test_without_keda_everything_else_is_applied_and_status_says_why_once() -> None:
    kube = FakeKube(resource(spec()))
    kube.missing = frozenset({"ScaledObject"})
    ctl = Controller(kube, progress_delay=0)  # type: ignore[arg-type]
    for _ in range(3):
        ctl.reconcile(("ml", "chat"), kube.live())
    assert kube.calls["apply Deployment"] == 1
    assert kube.calls["apply ScaledObject"] == 0
    message = kube.cr["status"]["autoscaler"]["message"]
    assert "needs KEDA" in message
    assert [e for e in kube.events if e[1] == "AutoscalingUnavailable"] == [
        ("Warning", "AutoscalingUnavailable", message)
    ]
    writes = kube.writes()
    for _ in range(5):
        ctl.reconcile(("ml", "chat"), kube.live())
    assert kube.writes() == writes, kube.calls  # settled: no write, no second event

    # KEDA installed: the ScaledObject, and the message leaves status (a merge patch removes a
    # nested field only when it names it with None), then nothing more.
    kube.missing = frozenset()
    for _ in range(3):
        ctl.reconcile(("ml", "chat"), kube.live())
    assert kube.calls["apply ScaledObject"] == 1
    assert "message" not in kube.cr["status"]["autoscaler"]
    writes = kube.writes()
    for _ in range(5):
        ctl.reconcile(("ml", "chat"), kube.live())
    assert kube.writes() == writes, kube.calls


def test_with_keda_the_scaled_object_is_applied_and_removed_with_the_setting() -> None:
    kube = FakeKube(resource(spec()))
    ctl = Controller(kube, progress_delay=0)  # type: ignore[arg-type]
    ctl.reconcile(("ml", "chat"), kube.live())
    assert kube.calls["apply ScaledObject"] == 1
    assert "message" not in kube.cr["status"]["autoscaler"]
    kube.cr["spec"] = {**BASE}
    kube.cr["metadata"]["generation"] = 2
    ctl.reconcile(("ml", "chat"), kube.live())
    assert kube.calls["delete ScaledObject"] == 1
    assert "autoscaler" not in kube.cr["status"]


def test_status_shows_the_hpa_current_and_desired_replicas() -> None:
    hpa = {
        "metadata": {"name": "keda-hpa-chat"},
        "status": {
            "currentReplicas": 1,
            "desiredReplicas": 3,
            "lastScaleTime": "2026-01-01T00:00:00Z",
        },
    }
    other = copy.deepcopy(hpa)
    other["metadata"]["name"] = "someone-elses"
    live = Live(cr=resource(spec(maxReplicas=4)), autoscalers=[other, hpa])
    assert autoscaler_status(parse_spec(spec(maxReplicas=4)), live) == {
        "name": "keda-hpa-chat",
        "minReplicas": 1,
        "maxReplicas": 4,
        "currentReplicas": 1,
        "desiredReplicas": 3,
        "lastScaleTime": "2026-01-01T00:00:00Z",
    }
