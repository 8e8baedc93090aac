"""The spec of a GptOssDeployment. Attribute docstrings become the CRD's descriptions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gptoss_operator.api.common import AnnotationMap, ApiModel, IntOrString, LabelMap, Quantity
from gptoss_operator.api.kube_types import Affinity, Toleration
from gptoss_operator.catalog import (
    DEFAULT_IMAGE,
    DEFAULT_PROFILE,
    MAX_CONTEXT,
    ModelName,
    ProfileName,
)
from gptoss_operator.vllm_flags import REASONING_PARSERS

# Values that land in vLLM's argv as a flag's value or as the model: argparse reads an item that
# starts with `-` as a flag, so vLLM would refuse to start.
NOT_A_FLAG = r"^[^-]"
EXTRA_ARGS_MAX = 64
"""Most items of engine.extraArgs (the CEL rules visit them by index up to this)."""
MIN_GPU_MEMORY_UTILIZATION = 0.05
"""Below 5 % of a GPU not even gpt-oss-20b's weights (about 13 GiB) fit on the largest GPU."""
ReasoningParser = Literal[REASONING_PARSERS]  # type: ignore[valid-type]


class SecretKeyRef(ApiModel):
    """A key of a Secret in the GptOssDeployment's namespace."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253)
    """Key inside the Secret."""


class ModelRef(ApiModel):
    """Which gpt-oss model to serve and where its weights come from."""

    name: ModelName
    """The model: gpt-oss-20b (one GPU of 16 GB or more) or gpt-oss-120b (80 GB or more in all)."""
    repository: str | None = Field(default=None, min_length=1, max_length=253, pattern=NOT_A_FLAG)
    """Hugging Face repository or local path of the weights (not starting with -). Default:
    openai/<name>."""
    revision: str | None = Field(
        default=None, max_length=128, pattern=r"^[A-Za-z0-9._/][A-Za-z0-9._/-]*$"
    )
    """Pinned Hugging Face revision (commit, tag or branch) passed as --revision."""


class CustomAccelerator(ApiModel):
    """A GPU type that is not one of the named profiles."""

    resource_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
        r"/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
    )
    """Extended resource name that counts the GPUs, e.g. nvidia.com/gpu: domain/name, outside
    kubernetes.io (never cpu, memory, ephemeral-storage or hugepages-*)."""
    node_selector: LabelMap = Field(default_factory=dict)
    """Node labels that select nodes with this GPU."""
    gpu_memory_gi_b: int = Field(ge=1, le=4096, alias="gpuMemoryGiB")
    """Memory of one GPU in GiB; decides the tensor parallel size the model needs."""
    gpus_per_node: int = Field(ge=1, le=64)
    """GPUs per node: the largest tensor parallel size one replica can use."""


class Accelerator(ApiModel):
    """The GPUs each replica runs on: a named profile or a custom accelerator (not both)."""

    profile: ProfileName | None = None
    """Named GPU profile: sets the node placement (the operator's GPU node labels for the profile,
    by default GPU feature discovery's nvidia.com/gpu.product), the GPU resource, the GPU memory
    and the vLLM recipe's per-architecture flags."""
    gpus_per_node: int | None = Field(default=None, ge=1, le=64)
    """Overrides the GPUs per node of the profile (or of the custom accelerator)."""
    custom: CustomAccelerator | None = None
    """A GPU type described by hand instead of a profile. No recipe flags are added."""


class EnvVar(ApiModel):
    """An environment variable with a literal value."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    """Variable name; names the operator sets (HF_HOME, VLLM_API_KEY...) are refused."""
    value: str = Field(default="", max_length=4096)
    """Variable value. Do not put secrets here."""


class EngineSettings(ApiModel):
    """vLLM engine settings."""

    max_model_len: int | None = Field(default=None, ge=256, le=MAX_CONTEXT)
    """Maximum context length in tokens (at most 131072, the model's). Lower values leave room
    for more concurrent sequences. Default: the model's context length."""
    gpu_memory_utilization: float = Field(default=0.90, ge=MIN_GPU_MEMORY_UTILIZATION, le=1)
    """Share of each GPU's memory vLLM may use, in [0.05, 1]."""
    max_num_seqs: int | None = Field(default=None, ge=1, le=65536)
    """Maximum sequences in one batch. Default: vLLM's."""
    max_num_batched_tokens: int | None = Field(default=None, ge=256, le=1048576)
    """Maximum tokens in one scheduler step. Default: the recipe's 8192 on Hopper and Blackwell
    (1024 for the tight gpt-oss-120b at tensor parallel 1 on H100), elsewhere vLLM's own per-GPU
    default (2048 on A100, L40S and L4); see docs/defaults.md."""
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "bfloat16", "float16"] | None = (
        None
    )
    """KV cache data type. Default: fp8 on Blackwell (recipe), auto elsewhere."""
    max_cudagraph_capture_size: int | None = Field(default=None, ge=1, le=65536)
    """Largest batch size captured in a CUDA graph. Default: the recipe's 2048 on Hopper and
    Blackwell, vLLM's own elsewhere."""
    stream_interval: int | None = Field(default=None, ge=1, le=1024)
    """Tokens per streamed chunk: 1 is most interactive, 20 maximizes throughput (recipe)."""
    extra_args: list[Annotated[str, Field(max_length=512)]] = Field(
        default_factory=list, max_length=EXTRA_ARGS_MAX
    )
    """Additional `vllm serve` arguments, one flag or value per item (`--flag`, `--flag=value`,
    or `--flag` then its value): exact flag names of the pinned vLLM, no abbreviations or `_`
    spellings. Flags the operator manages (--tensor-parallel-size, --port...) or that would
    break the pod (--uds, --headless, --data-parallel-size...) are refused; use the matching
    field instead. They come before the managed flags on the command line."""
    extra_env: list[EnvVar] = Field(default_factory=list, max_length=64)
    """Additional environment variables for the vLLM container."""


class ApiSettings(ApiModel):
    """The OpenAI-compatible API the Service exposes."""

    served_model_name: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=NOT_A_FLAG
    )
    """Model name clients send in requests. Default: openai/gpt-oss-20b or openai/gpt-oss-120b."""
    tool_calling: bool = True
    """Enable function calling on Chat Completions (--tool-call-parser openai
    --enable-auto-tool-choice)."""
    reasoning_parser: ReasoningParser = "openai_gptoss"
    """vLLM reasoning parser (a name of vLLM's registry); gpt-oss's harmony format is
    openai_gptoss, which vLLM would also pick by itself."""
    api_key_secret_ref: SecretKeyRef | None = None
    """Secret key holding the API key clients must send as `Authorization: Bearer <key>`. Every
    route needs it except /health (the probes) and, when podMonitor is on, /metrics: the operator
    loads an API-key middleware into vLLM from a ConfigMap; the key reaches the pod only through
    the Secret (env VLLM_API_KEY). Changing the Secret's value needs a rollout restart."""


class ModelDownload(ApiModel):
    """The download Job that fills the model-cache claim before any GPU pod starts (see
    docs/weights.md): CPU only, in the vLLM image, one Job per repository and revision. Until it
    has succeeded, the Deployment is not created (or, for a new revision, keeps its old pods)."""

    enabled: bool | None = None
    """Run the download Job. Default: on for a claim the operator creates (size), off for an
    existingClaimName (turn it on to fill an existing claim). Needs a claim; a local path as
    model.repository is never downloaded."""
    endpoint: str | None = Field(default=None, max_length=512, pattern=r"^https?://[^\s]+$")
    """Hugging Face endpoint or mirror (HF_ENDPOINT), e.g. https://hf-mirror.example.com.
    Default: https://huggingface.co."""
    encodings_url: str | None = Field(default=None, max_length=512, pattern=r"^https?://[^\s]+$")
    """Base URL the harmony tokenizer's o200k_base.tiktoken is fetched from onto the claim (the
    serving pods then read it with TIKTOKEN_ENCODINGS_BASE and need no network). Default:
    https://openaipublic.blob.core.windows.net/encodings."""
    parts: int | None = Field(default=None, ge=1, le=64)
    """Pieces the repository's files are split into (an Indexed Job's completions; progress
    counts finished parts). Default: one per safetensors shard of the model (20b: 3, 120b: 15)."""
    parallelism: int = Field(default=3, ge=1, le=64)
    """Parts downloading at the same time."""
    cpu: Quantity = "1"
    """CPU request of each download pod."""
    memory: Quantity = "2Gi"
    """Memory request and limit of each download pod."""
    deadline_seconds: int | None = Field(default=None, ge=60, le=604800)
    """Time the whole download may take (activeDeadlineSeconds). Default: 1 h for 20b, 3 h for
    120b."""
    backoff_limit: int = Field(default=4, ge=0, le=100)
    """Failed pods retried (with the Job controller's growing back-off) before the download
    counts as failed. A refused token, a missing repository or revision and a full disk fail at
    once."""
    node_selector: LabelMap = Field(default_factory=dict)
    """Node labels the download pods require (e.g. a CPU pool). Without it they prefer nodes
    without GPUs."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Tolerations of the download pods."""


class ModelCache(ApiModel):
    """Where the weights are cached (HF_HOME). Without a claim, an emptyDir per pod sized for the
    model. vLLM's compile cache (VLLM_CACHE_ROOT) goes to its vllm/ directory so restarts skip
    recompiling; for a read-only claim, point VLLM_CACHE_ROOT elsewhere with engine.extraEnv."""

    existing_claim_name: str | None = Field(default=None, max_length=253)
    """An existing PersistentVolumeClaim to mount at HF_HOME."""
    size: Quantity | None = None
    """Size of a PersistentVolumeClaim the operator creates, named <name>-model-cache."""
    storage_class_name: str | None = Field(default=None, max_length=253)
    """Storage class of the created claim. Default: the cluster's default class."""
    access_modes: list[Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"]] = Field(
        default=["ReadWriteOnce"], max_length=3
    )
    """Access modes of the created claim. ReadWriteOnce alone allows one replica: replicas on
    several nodes need ReadWriteMany."""
    hf_token_secret_ref: SecretKeyRef | None = None
    """Secret key holding a Hugging Face token (env HF_TOKEN); gpt-oss is not gated."""
    offline: bool = False
    """Set HF_HUB_OFFLINE=1: serve only from the cache volume, which must be filled by the
    download Job or be an existing, pre-populated claim (an emptyDir starts empty). With the
    download Job the serving pods are always offline. Without it, in air-gapped clusters also
    point TIKTOKEN_ENCODINGS_BASE (extraEnv) at the harmony encodings."""
    download: ModelDownload = ModelDownload()
    """The download Job that fills the claim before GPUs are taken."""


class Resources(ApiModel):
    """CPU and memory of the vLLM container (GPUs follow the tensor parallel size)."""

    cpu: Quantity | None = None
    """CPU request, at least 2 (vLLM's API server and engine core are one process each).
    Default: 2 x (2 + GPUs per replica) vCPUs, vLLM's minimum for GPU serving."""
    memory: Quantity | None = None
    """Memory request and limit (the /dev/shm volume is added to the limit), at least 8Gi (the
    weights are loaded through host memory). Default: 32Gi for 20b, 96Gi for 120b."""


class Scheduling(ApiModel):
    """Pod placement in addition to the accelerator's. Replicas are spread over nodes as a
    preference (topologySpreadConstraints on kubernetes.io/hostname, ScheduleAnyway: a hard rule
    would leave replicas Pending while GPUs are free on a node that already runs one)."""

    node_selector: LabelMap = Field(default_factory=dict)
    """Node labels the pods require."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Tolerations added to the default nvidia.com/gpu one."""
    affinity: Affinity | None = None
    """Pod affinity. When it has a nodeAffinity, that replaces the operator's GPU-type node rule
    (so clusters that label GPU nodes their own way can place pods); podAffinity and
    podAntiAffinity alone keep it."""
    priority_class_name: str | None = Field(default=None, max_length=253)
    """PriorityClass of the pods."""
    runtime_class_name: str | None = Field(default=None, max_length=253)
    """RuntimeClass of the pods, e.g. nvidia."""


class ServiceSettings(ApiModel):
    """The Service in front of the pods, named like the GptOssDeployment."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    """Service type."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Service port of the OpenAI-compatible API."""
    annotations: AnnotationMap = Field(default_factory=dict)
    """Annotations of the Service."""


class Probes(ApiModel):
    """Health probes on vLLM's /health."""

    startup_budget_seconds: int | None = Field(default=None, ge=60, le=86400)
    """Time the server may take to become healthy before the pod is restarted. Default: per
    model, longer for 120b and when weights download in the pod (not offline)."""


class Rollout(ApiModel):
    """How pods are replaced when the spec changes."""

    strategy: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    """RollingUpdate replaces pods a few at a time; Recreate stops all first."""
    max_surge: IntOrString = 0
    """Extra pods during a rolling update. 0 because GPU nodes are usually full."""
    max_unavailable: IntOrString = 1
    """Pods that may be down during a rolling update."""
    progress_deadline_seconds: int | None = Field(default=None, ge=10, le=86400)
    """Time a rollout may make no progress before it counts as failed (Degraded, and rolled
    back when autoRollback is on). Default: startup budget plus 600 s for scheduling and the
    image pull."""
    auto_rollback: bool = True
    """When a rollout exceeds its progress deadline, restore the pod template of the last spec
    that was available, and report RolledBack until the spec changes."""
    revision_history_limit: int = Field(default=3, ge=0, le=100)
    """Old ReplicaSets to keep."""


class Shutdown(ApiModel):
    """Graceful shutdown: stop routing, then let in-flight requests finish."""

    pre_stop_sleep_seconds: int = Field(default=15, ge=0, le=600)
    """Sleep before SIGTERM so endpoints stop routing to the pod."""
    drain_seconds: int = Field(default=45, ge=0, le=3600)
    """Time vLLM waits for in-flight requests after SIGTERM (--shutdown-timeout)."""
    termination_grace_period_seconds: int | None = Field(default=None, ge=1, le=7200)
    """Pod grace period; must exceed preStop sleep plus drain. Default: their sum plus 15 s."""


class PodSecurity(ApiModel):
    """Who the vLLM container runs as. The pod always drops every capability, forbids privilege
    escalation, uses the RuntimeDefault seccomp profile and mounts no ServiceAccount token."""

    run_as_user: int | None = Field(default=None, ge=0, le=2147483647)
    """UID of the vLLM process. Default: the image's (root in vllm/vllm-openai). A non-zero
    UID, with runAsNonRoot, lets a namespace enforcing the `restricted` Pod Security Standard
    admit the pod; HOME is then /tmp unless extraEnv sets it (the image keeps caches in /root)."""
    run_as_group: int | None = Field(default=None, ge=0, le=2147483647)
    """GID of the vLLM process. Default: the image's."""
    run_as_non_root: bool | None = None
    """Make the kubelet refuse to start the container as UID 0. Default: true when runAsUser is
    a non-zero UID, unset otherwise."""
    fs_group: int | None = Field(default=None, ge=0, le=2147483647)
    """Group that owns the model-cache volume, so a non-root user can write the weights. Default:
    runAsGroup when set."""


class PodDisruptionBudgetSettings(ApiModel):
    """PodDisruptionBudget for voluntary disruptions (node drains)."""

    enabled: bool = True
    """Create the budget. On by default: with maxUnavailable 1 it never blocks a drain of a
    single replica, and it keeps drains from taking several replicas at once."""
    max_unavailable: IntOrString = 1
    """Pods a drain may take down at once."""


class NetworkPolicySettings(ApiModel):
    """NetworkPolicy that admits traffic only to the inference port."""

    enabled: bool = False
    """Create the NetworkPolicy."""
    from_namespace_selector: LabelMap | None = None
    """Namespaces (by label) allowed to connect. Default: this namespace only."""
    from_pod_selector: LabelMap | None = None
    """Pods (by label) allowed to connect. Default: any pod of the allowed namespaces."""
    metrics_namespace_selector: LabelMap = Field(
        default_factory=lambda: {"kubernetes.io/metadata.name": "monitoring"}
    )
    """When podMonitor is on: namespaces (by label) whose Prometheus may scrape the port (it
    can reach /metrics without the API key). Default: the namespace named monitoring."""
    metrics_pod_selector: LabelMap | None = None
    """When podMonitor is on: Prometheus pods (by label) in those namespaces. Default: any."""


class PodMonitorSettings(ApiModel):
    """Prometheus Operator PodMonitor for vLLM's /metrics."""

    enabled: bool = False
    """Create a monitoring.coreos.com/v1 PodMonitor (needs the Prometheus Operator CRDs)."""
    interval: str = Field(default="30s", pattern=r"^[0-9]+(ms|s|m|h)$", max_length=16)
    """Scrape interval."""
    labels: LabelMap = Field(default_factory=dict)
    """Labels of the PodMonitor, for the Prometheus podMonitorSelector."""


AutoscalingMetric = Literal["RequestsWaiting", "KVCacheUsage", "TimeToFirstToken"]
AUTOSCALING_TARGETS: dict[str, float] = {
    "RequestsWaiting": 2.0,
    "KVCacheUsage": 0.8,
    "TimeToFirstToken": 2.0,
}
"""Default target of each autoscaling metric (see AutoscalingSettings.target)."""


class AutoscalingSettings(ApiModel):
    """Autoscaling on vLLM's own metrics: a KEDA ScaledObject (needs KEDA) whose HPA sets
    spec.replicas through the scale subresource."""

    enabled: bool = False
    """Create a keda.sh/v1alpha1 ScaledObject targeting this GptOssDeployment. While it exists,
    the autoscaler owns spec.replicas: a kubectl scale holds only until its next decision."""
    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Fewest replicas. 0 lets KEDA scale to zero when the query stays at or below
    activationTarget for idleSeconds (needs `query`: vLLM's own metrics vanish with its last pod,
    so they cannot bring the first one back)."""
    max_replicas: int = Field(default=2, ge=1, le=1000)
    """Most replicas (each one takes its GPUs: size it to the GPUs you can spare)."""
    metric: AutoscalingMetric = "RequestsWaiting"
    """What to scale on: RequestsWaiting (vllm:num_requests_waiting per replica: requests queued
    because the batch or the KV cache is full), KVCacheUsage (vllm:kv_cache_usage_perc per
    replica, a fraction) or TimeToFirstToken (90th percentile of
    vllm:time_to_first_token_seconds over 2 minutes)."""
    target: float | None = Field(default=None, gt=0, le=1000000)
    """The value to hold the metric at. Default: 2 waiting requests per replica, 0.8 KV-cache
    use per replica, or 2 seconds to the first token."""
    query: str | None = Field(default=None, min_length=1, max_length=2048)
    """A PromQL query replacing the built-in one of `metric`, compared with `target` the same
    way (its total per replica for RequestsWaiting and KVCacheUsage, its value for
    TimeToFirstToken). For scale from zero, a demand signal that exists without pods, e.g. a
    gateway's request rate."""
    activation_target: float = Field(default=0, ge=0, le=1000000)
    """KEDA's activation threshold: with minReplicas 0 the resource scales from zero above it
    and to zero after idleSeconds at or below it."""
    idle_seconds: int = Field(default=1800, ge=0, le=86400)
    """With minReplicas 0: how long the query must stay at or below activationTarget before
    the last replica goes (KEDA's cooldownPeriod)."""
    scale_down_stabilization_seconds: int = Field(default=1200, ge=0, le=3600)
    """The HPA scales down only to the highest count it wanted over this window: a replica that
    took minutes to load is not dropped at the first quiet minute. Replicas go one at a time,
    at most one a minute."""
    scale_up_stabilization_seconds: int = Field(default=0, ge=0, le=3600)
    """Window over which a scale-up must be wanted before it happens (0: at once)."""
    polling_interval_seconds: int = Field(default=30, ge=1, le=3600)
    """How often KEDA asks Prometheus while at zero replicas (the HPA polls every 15 s by
    default, through KEDA's metrics server)."""
    prometheus_address: str | None = Field(
        default=None, max_length=512, pattern=r"^https?://[^\s/]+(/[^\s]*)?$"
    )
    """Base URL of the Prometheus (or Thanos, Mimir...) that scrapes vLLM, e.g.
    http://prometheus-operated.monitoring.svc:9090. Required when enabled."""
    authentication_ref: str | None = Field(
        default=None, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
    )
    """Name of a KEDA TriggerAuthentication in this namespace for Prometheus (bearer token,
    basic auth, TLS), when it needs credentials."""


class GptOssDeploymentSpec(ApiModel):
    """Desired state of a gpt-oss model served by vLLM behind an OpenAI-compatible Service."""

    model: ModelRef
    """The model to serve."""
    replicas: int = Field(default=1, ge=0, le=1000)
    """Number of vLLM pods (each one full model copy). Scalable with kubectl scale and HPA."""
    accelerator: Accelerator = Accelerator(profile=DEFAULT_PROFILE)
    """GPUs of each replica. Default: the H100-80GB profile."""
    tensor_parallel_size: Literal[1, 2, 4, 8] | None = None
    """GPUs per replica the model is split across (1, 2, 4 or 8, at most the node's GPUs, enough
    for the weights). Default: the smallest size that leaves room for a KV cache, from the
    catalog (gpt-oss-120b on H100-80GB: 2, on H200: 1; gpt-oss-20b: 1)."""
    engine: EngineSettings = EngineSettings()
    """vLLM engine settings."""
    api: ApiSettings = ApiSettings()
    """OpenAI-compatible API settings."""
    model_cache: ModelCache = ModelCache()
    """Weights cache and Hugging Face access."""
    image: str = Field(
        default=DEFAULT_IMAGE,
        max_length=512,
        pattern=r"^[^@\s]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$",
    )
    """vLLM image with a pinned tag or digest (never :latest)."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Image pull policy."""
    resources: Resources = Resources()
    """CPU and memory of the vLLM container."""
    scheduling: Scheduling = Scheduling()
    """Extra pod placement."""
    pod_labels: LabelMap = Field(default_factory=dict)
    """Labels added to the pods (the app.kubernetes.io labels win)."""
    pod_annotations: AnnotationMap = Field(default_factory=dict)
    """Annotations added to the pods."""
    service: ServiceSettings = ServiceSettings()
    """The Service."""
    probes: Probes = Probes()
    """Health probes."""
    rollout: Rollout = Rollout()
    """Rollout behaviour."""
    shutdown: Shutdown = Shutdown()
    """Graceful shutdown."""
    pod_disruption_budget: PodDisruptionBudgetSettings = PodDisruptionBudgetSettings()
    """PodDisruptionBudget."""
    network_policy: NetworkPolicySettings = NetworkPolicySettings()
    """NetworkPolicy."""
    pod_monitor: PodMonitorSettings = PodMonitorSettings()
    """PodMonitor."""
    autoscaling: AutoscalingSettings = AutoscalingSettings()
    """Autoscaling on vLLM's metrics through KEDA."""
    security_context: PodSecurity = PodSecurity()
    """User and groups of the vLLM container; the rest of the pod's hardening is fixed."""
