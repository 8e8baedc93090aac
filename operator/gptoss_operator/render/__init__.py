"""Spec to manifests: pure functions, no I/O, no Kubernetes client (import-linter enforces it)."""

from __future__ import annotations

import copy
from typing import Any

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.catalog import DEFAULT_GPU_NODE_LABELS, GpuNodeLabels
from gptoss_operator.render.command import secret_refs
from gptoss_operator.render.kinds import BY_KIND, CHILD_KINDS, WATCHED_KINDS, WatchedKind
from gptoss_operator.render.resolve import (
    APP_NAME,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MODEL_LABEL,
    SPEC_HASH_ANNOTATION,
    Resolved,
    cache_claim_name,
    endpoint_url,
    labels,
    resolve,
    resolve_validated,
    selector_labels,
)
from gptoss_operator.render.workload import build_deployment, build_service, spec_hash

__all__ = [
    "APP_NAME",
    "BY_KIND",
    "CHILD_KINDS",
    "INSTANCE_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MODEL_LABEL",
    "SPEC_HASH_ANNOTATION",
    "WATCHED_KINDS",
    "Resolved",
    "WatchedKind",
    "build_deployment",
    "build_service",
    "cache_claim_name",
    "endpoint_url",
    "labels",
    "render_children",
    "render_resolved",
    "resolve",
    "resolve_validated",
    "secret_refs",
    "selector_labels",
    "selector_string",
    "spec_hash",
]


def render_children(
    name: str,
    namespace: str,
    spec: GptOssDeploymentSpec,
    owner_reference: dict[str, Any] | None = None,
    gpu_node_labels: GpuNodeLabels = DEFAULT_GPU_NODE_LABELS,
) -> list[dict[str, Any]]:
    """Every child object of a GptOssDeployment, in a fixed order (PVC first, then workload).

    `gpu_node_labels` is the operator's per-profile GPU node label setting. Raises SpecError
    when the spec cannot be served. The same input renders identical output.
    """
    return render_resolved(name, namespace, spec, resolve(spec, gpu_node_labels), owner_reference)


def render_resolved(
    name: str,
    namespace: str,
    spec: GptOssDeploymentSpec,
    resolved: Resolved,
    owner_reference: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """`render_children` for a spec already resolved (the reconcile resolves once)."""
    children = []
    for kind in CHILD_KINDS:
        assert kind.build is not None
        child = kind.build(name, namespace, spec, resolved)
        if child is None:
            continue
        if owner_reference is not None:
            child["metadata"]["ownerReferences"] = [copy.deepcopy(owner_reference)]
        children.append(child)
    return children


def selector_string(name: str) -> str:
    """The pods' label selector as a string, for status.selector (scale subresource)."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(name).items()))
