"""Spec to manifests: pure functions, no I/O, no Kubernetes client (import-linter enforces it)."""

from __future__ import annotations

import copy
from typing import Any

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.render.auth import build_auth_config_map
from gptoss_operator.render.command import secret_refs
from gptoss_operator.render.optional import (
    build_cache_pvc,
    build_network_policy,
    build_pdb,
    build_pod_monitor,
)
from gptoss_operator.render.pod import cache_claim_name
from gptoss_operator.render.resolve import (
    APP_NAME,
    MANAGED_BY,
    MODEL_LABEL,
    SPEC_HASH_ANNOTATION,
    Resolved,
    endpoint_url,
    labels,
    resolve,
    selector_labels,
)
from gptoss_operator.render.workload import build_deployment, build_service, spec_hash

__all__ = [
    "APP_NAME",
    "MANAGED_BY",
    "MODEL_LABEL",
    "SPEC_HASH_ANNOTATION",
    "Resolved",
    "build_deployment",
    "build_service",
    "cache_claim_name",
    "endpoint_url",
    "labels",
    "render_children",
    "resolve",
    "secret_refs",
    "selector_labels",
    "selector_string",
    "spec_hash",
]

_BUILDERS = (
    build_cache_pvc,
    # Before the Deployment: its pods mount the ConfigMap.
    build_auth_config_map,
    build_deployment,
    build_service,
    build_pdb,
    build_network_policy,
    build_pod_monitor,
)


def render_children(
    name: str,
    namespace: str,
    spec: GptOssDeploymentSpec,
    owner_reference: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every child object of a GptOssDeployment, in a fixed order (PVC first, then workload).

    Raises SpecError when the spec cannot be served. The same input renders identical output.
    """
    resolved = resolve(spec)
    children = []
    for build in _BUILDERS:
        child = build(name, namespace, spec, resolved)
        if child is None:
            continue
        if owner_reference is not None:
            child["metadata"]["ownerReferences"] = [copy.deepcopy(owner_reference)]
        children.append(child)
    return children


def selector_string(name: str) -> str:
    """The pods' label selector as a string, for status.selector (scale subresource)."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(name).items()))
