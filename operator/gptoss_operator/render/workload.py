"""The Deployment and Service of a GptOssDeployment."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.render.pod import pod_template
from gptoss_operator.render.resolve import SPEC_HASH_ANNOTATION, Resolved, labels, selector_labels


def spec_hash(template: dict[str, Any]) -> str:
    """A short stable hash of a pod template (canonical JSON)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _strategy(spec: GptOssDeploymentSpec) -> dict[str, Any]:
    rollout = spec.rollout
    if rollout.strategy == "Recreate":
        return {"type": "Recreate"}
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": rollout.max_surge, "maxUnavailable": rollout.max_unavailable},
    }


def build_deployment(
    name: str, namespace: str, spec: GptOssDeploymentSpec, r: Resolved
) -> dict[str, Any]:
    """The vLLM Deployment; its pod template carries the gptoss.dev/spec-hash annotation."""
    template = pod_template(name, spec, r)
    digest = spec_hash(template)
    template["metadata"]["annotations"] = {
        **template["metadata"].get("annotations", {}),
        SPEC_HASH_ANNOTATION: digest,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(name, r),
            "annotations": {SPEC_HASH_ANNOTATION: digest},
        },
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector_labels(name)},
            "strategy": _strategy(spec),
            "progressDeadlineSeconds": r.progress_deadline_seconds,
            "revisionHistoryLimit": spec.rollout.revision_history_limit,
            "template": template,
        },
    }


def build_service(
    name: str, namespace: str, spec: GptOssDeploymentSpec, r: Resolved
) -> dict[str, Any]:
    """The Service of the OpenAI-compatible API, named like the GptOssDeployment."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels(name, r)}
    if spec.service.annotations:
        metadata["annotations"] = dict(spec.service.annotations)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": spec.service.type,
            "selector": selector_labels(name),
            "ports": [
                {
                    "name": "http",
                    "port": r.service_port,
                    "targetPort": "http",
                    "protocol": "TCP",
                    # vLLM speaks HTTP/1.1: lets meshes and gateways pick the right L7 handling.
                    "appProtocol": "http",
                }
            ],
        },
    }
