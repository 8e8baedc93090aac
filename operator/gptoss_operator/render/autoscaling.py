"""The KEDA ScaledObject of `spec.autoscaling`: a Prometheus trigger on vLLM's own metrics,
targeting the GptOssDeployment itself through its scale subresource.

KEDA creates an HPA (`keda-hpa-<name>`) that reads the query through KEDA's metrics server
(external.metrics.k8s.io) and writes spec.replicas; the operator then rolls the Deployment to
that count like any other scale. KEDA rather than a plain HPA on custom metrics: it needs no
Prometheus Adapter rule per metric, carries the PromQL in the object that uses it, and adds
activation (scale to and from zero), which an HPA cannot do.
"""

from __future__ import annotations

from typing import Any

from gptoss_operator.api import GROUP, KIND, VERSION, GptOssDeploymentSpec
from gptoss_operator.api.spec import AUTOSCALING_TARGETS
from gptoss_operator.render.resolve import Resolved, labels

API_VERSION = "keda.sh/v1alpha1"
TTFT_QUANTILE = 0.9
TTFT_WINDOW = "2m"
# Replicas go one at a time, at most one a minute: each one dropped is a model copy that took
# minutes to load.
SCALE_DOWN_POLICY = {"type": "Pods", "value": 1, "periodSeconds": 60}


def pod_selector(name: str, namespace: str) -> str:
    """PromQL label matchers for the vLLM pods of one GptOssDeployment. The `pod` and
    `namespace` labels are what a PodMonitor (and Kubernetes service discovery in general)
    attaches; a Deployment's pods are named <name>-<template hash>-<suffix>, so the pattern
    cannot match the pods of another resource whose name merely starts with <name>-."""
    return f'namespace="{namespace}",pod=~"{name}-[a-z0-9]+-[a-z0-9]+"'


def query(name: str, namespace: str, spec: GptOssDeploymentSpec) -> str:
    """The PromQL query KEDA asks: the spec's own, else the built-in one of its metric."""
    auto = spec.autoscaling
    if auto.query is not None:
        return auto.query
    sel = pod_selector(name, namespace)
    if auto.metric == "RequestsWaiting":
        return f"sum(vllm:num_requests_waiting{{{sel}}})"
    if auto.metric == "KVCacheUsage":
        return f"sum(vllm:kv_cache_usage_perc{{{sel}}})"
    # A quantile of no traffic is NaN: no value (0) then, so a quiet model can scale down.
    rate = f"rate(vllm:time_to_first_token_seconds_bucket{{{sel}}}[{TTFT_WINDOW}])"
    return f"(histogram_quantile({TTFT_QUANTILE}, sum by (le) ({rate})) > 0) or vector(0)"


def metric_type(spec: GptOssDeploymentSpec) -> str:
    """How the HPA compares the value with the target: per replica for the totals (replicas =
    ceil(total / target)), as a whole for a latency (replicas grow by value / target)."""
    return "Value" if spec.autoscaling.metric == "TimeToFirstToken" else "AverageValue"


def target(spec: GptOssDeploymentSpec) -> float:
    auto = spec.autoscaling
    return auto.target if auto.target is not None else AUTOSCALING_TARGETS[auto.metric]


def _number(value: float) -> str:
    """KEDA reads thresholds as text: integers without a trailing .0."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def build_scaled_object(
    name: str, namespace: str, spec: GptOssDeploymentSpec, r: Resolved
) -> dict[str, Any] | None:
    """The ScaledObject, when `autoscaling.enabled`."""
    auto = spec.autoscaling
    if not auto.enabled or auto.prometheus_address is None:
        return None
    trigger: dict[str, Any] = {
        "type": "prometheus",
        "name": auto.metric[0].lower() + auto.metric[1:],
        "metricType": metric_type(spec),
        "metadata": {
            "serverAddress": auto.prometheus_address,
            "query": query(name, namespace, spec),
            "threshold": _number(target(spec)),
            "activationThreshold": _number(auto.activation_target),
        },
    }
    if auto.authentication_ref is not None:
        trigger["authenticationRef"] = {"name": auto.authentication_ref}
    return {
        "apiVersion": API_VERSION,
        "kind": "ScaledObject",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(name, r, "autoscaler"),
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": name},
            "minReplicaCount": auto.min_replicas,
            "maxReplicaCount": auto.max_replicas,
            "pollingInterval": auto.polling_interval_seconds,
            "cooldownPeriod": auto.idle_seconds,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": auto.scale_down_stabilization_seconds,
                            "policies": [dict(SCALE_DOWN_POLICY)],
                        },
                        "scaleUp": {
                            "stabilizationWindowSeconds": auto.scale_up_stabilization_seconds,
                        },
                    }
                }
            },
            "triggers": [trigger],
        },
    }
