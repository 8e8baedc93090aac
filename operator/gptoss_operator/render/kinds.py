"""Every kind the operator writes or watches, in one table: adding a child kind is one edit here.

The watch caches (handlers), the API paths (kube), pruning (reconcile) and rendering all read this
table. Pure data plus the pure builders: no Kubernetes client here either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.render.auth import build_auth_config_map
from gptoss_operator.render.autoscaling import build_scaled_object
from gptoss_operator.render.optional import (
    build_cache_pvc,
    build_network_policy,
    build_pdb,
    build_pod_monitor,
)
from gptoss_operator.render.resolve import Resolved
from gptoss_operator.render.weights import build_download_job
from gptoss_operator.render.workload import build_deployment, build_service

Builder = Callable[[str, str, GptOssDeploymentSpec, Resolved], dict[str, Any] | None]


@dataclass(frozen=True)
class WatchedKind:
    """A kind the operator watches, labelled as ours, and (when `build` is set) writes."""

    kind: str
    group: str
    version: str
    plural: str
    # Renders the child from the spec; None for kinds only observed (ReplicaSets, pods).
    build: Builder | None = None
    # Its watch events request a reconcile (a ReplicaSet change always comes with a pod or
    # Deployment change, so ReplicaSets are cached but do not trigger).
    triggers: bool = True
    # Deleted again when the spec stops asking for it. The Deployment and Service always exist;
    # a model-cache claim is never pruned (it holds the weights).
    prunable: bool = False
    # When an apply is refused because of someone else's edit (a list key changed, an immutable
    # field), the child is replaced or recreated: kinds with such fields only (the RBAC grants
    # update and delete for them). Never the claim: that loses the weights.
    recreatable: bool = False
    # Fields of `spec` the apiserver allocates, which a replacement (PUT) carries over.
    kept_on_replace: tuple[str, ...] = ()
    # Served only where an add-on's CRD is installed (KEDA): rendered only when the apiserver
    # serves it, and otherwise reported in status instead of failing the whole reconcile.
    optional_api: bool = False
    # Part of every Kubernetes API: cached by the operator's own informers (informer.py).
    # Kinds of add-ons are watched through Kopf, which follows their CRDs coming and going.
    built_in: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def index(self) -> str:
        """The name of its watch cache (a Kopf index)."""
        return f"{self.plural}_by_owner"


# Rendering order: the claim first; the Deployment (the part that takes GPUs and serves) is
# applied last by the controller, after every other child was accepted.
WATCHED_KINDS: tuple[WatchedKind, ...] = (
    WatchedKind(
        "PersistentVolumeClaim",
        "",
        "v1",
        "persistentvolumeclaims",
        build_cache_pvc,
    ),
    # The download Job of the spec's revision (render/weights.py). Never patched (its pod
    # template is immutable) and pruned by its own rule in reconcile: the plan decides both.
    WatchedKind("Job", "batch", "v1", "jobs", build_download_job),
    # Before the Deployment: its pods mount the API-key middleware from it.
    WatchedKind("ConfigMap", "", "v1", "configmaps", build_auth_config_map, prunable=True),
    WatchedKind("Deployment", "apps", "v1", "deployments", build_deployment, recreatable=True),
    WatchedKind(
        "Service",
        "",
        "v1",
        "services",
        build_service,
        recreatable=True,
        kept_on_replace=("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"),
    ),
    WatchedKind(
        "PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", build_pdb, prunable=True
    ),
    WatchedKind(
        "NetworkPolicy",
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        build_network_policy,
        prunable=True,
    ),
    # Only where the Prometheus operator's CRDs exist; Kopf skips resources it cannot find.
    WatchedKind(
        "PodMonitor",
        "monitoring.coreos.com",
        "v1",
        "podmonitors",
        build_pod_monitor,
        prunable=True,
        built_in=False,
    ),
    # Only where KEDA is installed; its HPA (KEDA copies the ScaledObject's labels onto it) is
    # watched for the autoscaler's current and desired replicas in status.
    WatchedKind(
        "ScaledObject",
        "keda.sh",
        "v1alpha1",
        "scaledobjects",
        build_scaled_object,
        prunable=True,
        optional_api=True,
        built_in=False,
    ),
    WatchedKind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers"),
    # ReplicaSets are not watched: only an automatic rollback reads them (the pod template of
    # the last available spec), and it lists them then (controller.py). Watching them cost a
    # sixth of the cached objects and of Kopf's event processing, for nothing the rest reads.
    WatchedKind("Pod", "", "v1", "pods"),
)
CHILD_KINDS: tuple[WatchedKind, ...] = tuple(k for k in WATCHED_KINDS if k.build is not None)
BY_KIND: dict[str, WatchedKind] = {k.kind: k for k in WATCHED_KINDS}
