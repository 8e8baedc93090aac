"""Optional children: the cache PVC, PodDisruptionBudget, NetworkPolicy and PodMonitor."""

from __future__ import annotations

from typing import Any

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.render.resolve import Resolved, labels, selector_labels


def _metadata(
    name: str, namespace: str, r: Resolved, component: str | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels(name, r) if component is None else labels(name, r, component),
    }


def build_cache_pvc(
    name: str, namespace: str, spec: GptOssDeploymentSpec, r: Resolved
) -> dict[str, Any] | None:
    """The model-cache claim the operator creates when `modelCache.size` is set."""
    cache = spec.model_cache
    if not cache.size or cache.existing_claim_name:
        return None
    pvc_spec: dict[str, Any] = {
        "accessModes": list(cache.access_modes),
        "resources": {"requests": {"storage": cache.size}},
    }
    if cache.storage_class_name:
        pvc_spec["storageClassName"] = cache.storage_class_name
    metadata = _metadata(name, namespace, r, "model-cache")
    metadata["name"] = f"{name}-model-cache"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": pvc_spec,
    }


def build_pdb(
    name: str, namespace: str, spec: GptOssDeploymentSpec, r: Resolved
) -> dict[str, Any] | None:
    """A PodDisruptionBudget limiting how many replicas a drain takes at once."""
    pdb = spec.pod_disruption_budget
    if not pdb.enabled:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(name, namespace, r),
        "spec": {
            "maxUnavailable": pdb.max_unavailable,
            "selector": {"matchLabels": selector_labels(name)},
        },
    }


def build_network_policy(
    name: str, namespace: str, spec: GptOssDeploymentSpec, r: Resolved
) -> dict[str, Any] | None:
    """A NetworkPolicy admitting traffic to the inference port only, from the allowed clients
    and, when a PodMonitor is on, from the monitoring namespace's Prometheus."""
    np = spec.network_policy
    if not np.enabled:
        return None
    peer: dict[str, Any] = {}
    if np.from_namespace_selector is not None:
        peer["namespaceSelector"] = {"matchLabels": dict(np.from_namespace_selector)}
    if np.from_pod_selector is not None or not peer:
        peer["podSelector"] = {"matchLabels": dict(np.from_pod_selector or {})}
    ingress = [{"from": [peer], "ports": [{"protocol": "TCP", "port": r.port}]}]
    if spec.pod_monitor.enabled:
        # A NetworkPolicy cannot tell paths apart: Prometheus reaches the port, and the API-key
        # middleware (when a key is set) keeps it on /metrics and /health.
        scraper: dict[str, Any] = {
            "namespaceSelector": {"matchLabels": dict(np.metrics_namespace_selector)}
        }
        if np.metrics_pod_selector is not None:
            scraper["podSelector"] = {"matchLabels": dict(np.metrics_pod_selector)}
        ingress.append({"from": [scraper], "ports": [{"protocol": "TCP", "port": r.port}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(name, namespace, r),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(name)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def build_pod_monitor(
    name: str, namespace: str, spec: GptOssDeploymentSpec, r: Resolved
) -> dict[str, Any] | None:
    """A Prometheus Operator PodMonitor scraping vLLM's /metrics, which the API-key middleware
    leaves open while the PodMonitor is on."""
    pm = spec.pod_monitor
    if not pm.enabled:
        return None
    metadata = _metadata(name, namespace, r)
    metadata["labels"] = {**pm.labels, **metadata["labels"]}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector_labels(name)},
            "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": pm.interval}],
        },
    }
