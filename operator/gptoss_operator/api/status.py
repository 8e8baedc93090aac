"""The status of a GptOssDeployment, written by the operator."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gptoss_operator.api.common import ApiModel


class Condition(ApiModel):
    """A condition in the metav1.Condition shape."""

    type: str = Field(max_length=316)
    """Condition type, e.g. Ready, Progressing, Degraded."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str = Field(default="", max_length=1024)
    """Machine-readable CamelCase reason of the last transition."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details."""
    last_transition_time: str | None = None
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The spec generation the condition was computed from."""


class WeightsStatus(ApiModel):
    """The download Job of the spec's weights (docs/weights.md)."""

    weights: str
    """Repository and revision, e.g. openai/gpt-oss-20b@main."""
    job: str
    """Name of the download Job."""
    state: Literal["Downloading", "Complete", "Failed"]
    """Downloading, Complete or Failed (the WeightsReady condition says why)."""
    parts_done: int
    """Parts of the repository downloaded and verified."""
    parts: int
    """Parts the download is split into (the Job's completions)."""
    progress: str
    """Share of the parts done, e.g. 40%."""
    bytes_done: int | None = None
    """Estimated bytes done (parts done x the catalog's size; official repositories only)."""
    bytes_total: int | None = None
    """Size of the download from the catalog (official repositories only)."""
    estimated_completion_time: str | None = None
    """When the download should end at the pace of its finished parts (RFC 3339)."""


class AutoscalerStatus(ApiModel):
    """What the autoscaler (KEDA's HPA) sees and wants, when spec.autoscaling is enabled."""

    name: str | None = None
    """The HPA KEDA created for the ScaledObject."""
    min_replicas: int | None = None
    """spec.autoscaling.minReplicas."""
    max_replicas: int | None = None
    """spec.autoscaling.maxReplicas."""
    current_replicas: int | None = None
    """Replicas the HPA last saw."""
    desired_replicas: int | None = None
    """Replicas the HPA last computed from the metric (it writes them to spec.replicas)."""
    last_scale_time: str | None = None
    """When the HPA last changed spec.replicas."""
    message: str | None = None
    """Why autoscaling does not act, e.g. KEDA is not installed."""


class GptOssDeploymentStatus(ApiModel):
    """Observed state, written by the operator."""

    observed_generation: int | None = None
    """The last spec generation the operator acted on."""
    phase: str | None = None
    """Summary: Pending, Downloading, Progressing, Ready, Degraded or Failed."""
    reason: str | None = None
    """Machine-readable reason for the phase."""
    message: str | None = None
    """Human-readable explanation of the phase."""
    replicas: int | None = None
    """Pods that exist (scale subresource)."""
    ready_replicas: int | None = None
    """Pods whose server answers /health."""
    updated_replicas: int | None = None
    """Pods that run the current spec."""
    available_replicas: int | None = None
    """Pods ready for the minimum time."""
    ready: str | None = None
    """Ready pods over desired, e.g. 1/2."""
    selector: str | None = None
    """Label selector of the pods (scale subresource, HPA)."""
    endpoint: str | None = None
    """In-cluster base URL for OpenAI clients, e.g. http://<name>.<ns>.svc.cluster.local:8000/v1."""
    tensor_parallel_size: int | None = None
    """Tensor parallel size in use (GPUs per replica)."""
    gpus_per_replica: int | None = None
    """GPUs each pod requests."""
    image: str | None = None
    """vLLM image in use."""
    spec_hash: str | None = None
    """Hash of the rendered pod template of the current spec."""
    last_available_spec_hash: str | None = None
    """Spec hash of the last rollout that became available (the rollback target)."""
    rolled_back_spec_hash: str | None = None
    """Spec hash of a failed rollout the operator rolled back from (autoRollback)."""
    weights: WeightsStatus | None = None
    """The download of the weights, when a download Job fills the model cache."""
    autoscaler: AutoscalerStatus | None = None
    """The autoscaler's view, when spec.autoscaling is enabled."""
    conditions: list[Condition] = Field(default_factory=list)
    """Current conditions: Ready, Progressing, Degraded and, with a download Job,
    WeightsReady."""
