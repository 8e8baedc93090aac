"""The pod template of the vLLM Deployment."""

from __future__ import annotations

import copy
import math
from typing import Any

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.render import auth
from gptoss_operator.render.command import COMMAND, vllm_args, vllm_env
from gptoss_operator.render.resolve import (
    CACHE_MOUNT,
    Resolved,
    cache_claim_name,
    labels,
    selector_labels,
)
from gptoss_operator.render.security import container_security_context, pod_security_context
from gptoss_operator.render.weights import weights_check_container

CONTAINER = "vllm"
CACHE_VOLUME = "model-cache"
SHM_VOLUME = "dshm"
STARTUP_PERIOD = 10
MIDDLEWARE_ANNOTATION = "gptoss.dev/api-key-middleware"


def _probe(period: int, failures: int, timeout: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _resources(r: Resolved) -> dict[str, Any]:
    gpus = str(r.gpus_per_replica)
    # No CPU limit: throttling the API server and tokenizer hurts latency; memory is a hard limit
    # because /dev/shm and the weights' page cache are charged to it.
    requests = {"cpu": r.cpu, "memory": r.memory, r.resource_name: gpus}
    if r.cache_disk_gib:
        # Weights downloaded into an emptyDir count as the pod's ephemeral storage: request it so
        # the scheduler picks a node with the disk, instead of the kubelet evicting the pod later.
        requests["ephemeral-storage"] = f"{r.cache_disk_gib}Gi"
    return {"requests": requests, "limits": {"memory": r.memory, r.resource_name: gpus}}


def _container(spec: GptOssDeploymentSpec, r: Resolved) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [{"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT}]
    if r.shm_gib:
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    if spec.api.api_key_secret_ref is not None:
        mounts.append({"name": auth.VOLUME, "mountPath": auth.MOUNT, "readOnly": True})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": r.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": COMMAND,
        "args": vllm_args(spec, r),
        "env": vllm_env(spec, r),
        "ports": [{"name": "http", "containerPort": r.port, "protocol": "TCP"}],
        "resources": _resources(r),
        "volumeMounts": mounts,
        "securityContext": container_security_context(),
        # vLLM opens the port only once the engine is up, so /health failing means "still
        # loading" until the startup budget runs out (GAIE gpu-deployment.yaml, vLLM k8s docs).
        "startupProbe": _probe(
            STARTUP_PERIOD, math.ceil(r.startup_budget_seconds / STARTUP_PERIOD), 5
        ),
        "readinessProbe": _probe(5, 3, 3),
        "livenessProbe": _probe(10, 6, 5),
    }
    if spec.shutdown.pre_stop_sleep_seconds:
        # Give endpoints time to stop routing here before SIGTERM makes vLLM refuse new requests.
        container["lifecycle"] = {
            "preStop": {"exec": {"command": ["sleep", str(spec.shutdown.pre_stop_sleep_seconds)]}}
        }
    return container


def _volumes(name: str, spec: GptOssDeploymentSpec, r: Resolved) -> list[dict[str, Any]]:
    claim = cache_claim_name(name, spec)
    cache: dict[str, Any] = (
        {"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": claim}}
        if claim
        else {"name": CACHE_VOLUME, "emptyDir": {"sizeLimit": f"{r.cache_disk_gib}Gi"}}
    )
    volumes = [cache]
    if r.shm_gib:
        # NCCL and vLLM's shm broadcast need more than the container runtime's 64 MB /dev/shm
        # once TP > 1 (vLLM docs, deployment/k8s.md).
        volumes.append(
            {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": f"{r.shm_gib}Gi"}}
        )
    if spec.api.api_key_secret_ref is not None:
        volumes.append(
            {
                "name": auth.VOLUME,
                "configMap": {"name": auth.config_map_name(name), "defaultMode": 0o444},
            }
        )
    return volumes


def _affinity(spec: GptOssDeploymentSpec, r: Resolved) -> dict[str, Any] | None:
    """The user's affinity; without a nodeAffinity of its own, the GPU-type node rule is added.

    A user nodeAffinity replaces the rule rather than being ANDed with it: clusters whose GPU
    nodes carry other labels than the operator is configured for must be able to place pods
    from the spec alone. The rule has one term per label key (terms are ORed): a node with any
    of the configured keys set to one of its values qualifies.
    """
    affinity = copy.deepcopy(spec.scheduling.affinity) if spec.scheduling.affinity else {}
    if r.gpu_node_labels and "nodeAffinity" not in affinity:
        terms = [
            {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}
            for key, values in r.gpu_node_labels
        ]
        affinity["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    return affinity or None


def _topology_spread(name: str) -> list[dict[str, Any]]:
    """Spread replicas over nodes, as a preference.

    ScheduleAnyway, not DoNotSchedule: GPUs are the scarce resource, and a hard rule would leave
    a replica Pending while a node that already runs one has free GPUs (two TP-4 replicas on one
    8-GPU node). Rendered for every replica count so that scaling never changes the pod template
    (which would roll every pod).
    """
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_labels(name)},
        }
    ]


def pod_template(name: str, spec: GptOssDeploymentSpec, r: Resolved) -> dict[str, Any]:
    """The pod template, without the spec-hash annotation (the Deployment adds it)."""
    sched = spec.scheduling
    tolerations = [
        # GPU node pools are commonly tainted nvidia.com/gpu:NoSchedule (GKE, AKS, EKS guides).
        {"key": r.resource_name, "operator": "Exists", "effect": "NoSchedule"},
        *sched.tolerations,
    ]
    pod: dict[str, Any] = {
        # Service links inject VLLM_PORT=tcp://... for a Service named vllm, which vLLM reads as
        # its own port and crash-loops (vLLM env-vars doc).
        "enableServiceLinks": False,
        # vLLM never calls the Kubernetes API: no token for an attacker inside the pod to use.
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(spec),
        "terminationGracePeriodSeconds": r.termination_grace_period_seconds,
        "containers": [_container(spec, r)],
        "volumes": _volumes(name, spec, r),
        "tolerations": tolerations,
        "topologySpreadConstraints": _topology_spread(name),
    }
    if r.download_job:
        pod["initContainers"] = [weights_check_container(spec, r, container_security_context())]
    node_selector = {**dict(r.node_selector), **sched.node_selector}
    if node_selector:
        pod["nodeSelector"] = dict(sorted(node_selector.items()))
    affinity = _affinity(spec, r)
    if affinity:
        pod["affinity"] = affinity
    if sched.priority_class_name:
        pod["priorityClassName"] = sched.priority_class_name
    if sched.runtime_class_name:
        pod["runtimeClassName"] = sched.runtime_class_name
    metadata: dict[str, Any] = {"labels": {**spec.pod_labels, **labels(name, r)}}
    annotations = dict(spec.pod_annotations)
    if spec.api.api_key_secret_ref is not None:
        # The ConfigMap's content is not part of the template: a changed middleware must still
        # roll the pods, which load it once at start.
        annotations[MIDDLEWARE_ANNOTATION] = auth.middleware_digest()
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": pod}
