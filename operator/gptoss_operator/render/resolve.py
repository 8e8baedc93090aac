"""Turn a spec plus the catalog into the concrete values every child manifest is built from."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.catalog import (
    DEFAULT_GPU_NODE_LABELS,
    GPU_RESOURCE,
    MAX_CONTEXT,
    MODELS,
    PROFILES,
    VLLM_VERSION,
    GpuNodeLabels,
    cpu_request,
    default_tensor_parallel,
    fits_comfortably,
    startup_budget,
)
from gptoss_operator.validation import SpecError, gpu_memory_gib, gpus_per_node, validate_spec

APP_NAME = "gpt-oss"
MANAGED_BY = "gptoss-operator"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT = "inference-server"
SPEC_HASH_ANNOTATION = "gptoss.dev/spec-hash"
MODEL_LABEL = "gptoss.dev/model"
# Every child and pod carries it: the watch caches key children by it, server-side.
INSTANCE_LABEL = "app.kubernetes.io/instance"
CONTAINER_PORT = 8000
CACHE_MOUNT = "/models"
VLLM_CACHE_DIR = f"{CACHE_MOUNT}/vllm"
# The harmony encodings the download Job puts on the claim.
ENCODINGS_DIR = f"{CACHE_MOUNT}/tiktoken"
SHM_GIB = 16
# Scheduling, attaching the cache volume and pulling a ~10 GB vLLM image come before the startup
# budget starts to count.
PROGRESS_SLACK_SECONDS = 600
GRACE_BUFFER_SECONDS = 15
# Recipe, "Known limitation" on H100: TP1 with 120b at default settings OOMs; its fix is
# --gpu-memory-utilization 0.95 --max-num-batched-tokens 1024. Applied when the chosen TP leaves
# no comfortable KV pool and the user has not set these fields.
TIGHT_UTILIZATION = 0.95
TIGHT_BATCHED_TOKENS = 1024


@dataclass(frozen=True)
class Resolved:
    """Every derived value of a spec: catalog defaults applied, ready to render."""

    model: str
    repository: str
    served_model_name: str
    profile: str | None
    resource_name: str
    gpu_node_labels: tuple[tuple[str, tuple[str, ...]], ...]
    """Node label key and values of the GPU type (any one key matching places the pod)."""
    node_selector: tuple[tuple[str, str], ...]
    tensor_parallel_size: int
    gpus_per_replica: int
    gpu_memory_utilization: float
    max_model_len: int
    max_num_batched_tokens: int | None
    """None: vLLM's per-device default (not rendered)."""
    max_cudagraph_capture_size: int | None
    kv_cache_dtype: str | None
    image: str
    version: str
    port: int
    service_port: int
    cpu: str
    memory: str
    shm_gib: int
    cache_disk_gib: int | None
    """Size limit and ephemeral-storage request of an emptyDir model cache; None with a claim."""
    download_job: bool
    """A download Job fills the claim; the serving pods check its marker and run offline."""
    startup_budget_seconds: int
    progress_deadline_seconds: int
    termination_grace_period_seconds: int


def _version(image: str) -> str:
    """A label-safe version from the image tag; the pinned version for digests."""
    tail = image.split("@", 1)[0].rsplit("/", 1)[-1]
    tag = tail.rsplit(":", 1)[1] if ":" in tail else VLLM_VERSION
    return re.sub(r"[^A-Za-z0-9._-]", "-", tag.removeprefix("v"))[:63].strip("-._") or VLLM_VERSION


def resolve(
    spec: GptOssDeploymentSpec, gpu_node_labels: GpuNodeLabels = DEFAULT_GPU_NODE_LABELS
) -> Resolved:
    """Apply the catalog defaults to a spec. Raises SpecError for a spec that cannot be served.

    `gpu_node_labels` is the operator's setting (--gpu-node-labels): per profile, the node
    labels that mark nodes of that GPU type.
    """
    validate_spec(spec)
    return resolve_validated(spec, gpu_node_labels)


def resolve_validated(
    spec: GptOssDeploymentSpec, gpu_node_labels: GpuNodeLabels = DEFAULT_GPU_NODE_LABELS
) -> Resolved:
    """`resolve` for a spec `validate_spec` (or `parse_spec`) has already accepted."""
    facts = MODELS[spec.model.name]
    acc = spec.accelerator
    memory_gib = gpu_memory_gib(spec)
    engine = spec.engine
    tp = spec.tensor_parallel_size or default_tensor_parallel(
        facts.name, memory_gib, gpus_per_node(spec), engine.gpu_memory_utilization
    )
    if tp is None:  # validate_spec already refuses this; kept for the type checker.
        raise SpecError("spec.accelerator", f"{facts.name} does not fit on one node")
    tight = not fits_comfortably(facts.name, tp, memory_gib, engine.gpu_memory_utilization)
    explicit = engine.model_fields_set
    utilization = engine.gpu_memory_utilization
    batched = engine.max_num_batched_tokens
    if tight and "gpu_memory_utilization" not in explicit:
        utilization = TIGHT_UTILIZATION
    profile = PROFILES[acc.profile] if acc.profile else None
    if batched is None and tight:
        batched = TIGHT_BATCHED_TOKENS
    elif batched is None and profile is not None:
        # The recipe's value where it gives one, else None: vLLM's per-device default.
        batched = profile.recipe_batched_tokens
    cudagraph = engine.max_cudagraph_capture_size
    if cudagraph is None and profile is not None:
        cudagraph = profile.cudagraph_capture_size
    kv_dtype = engine.kv_cache_dtype or (profile.kv_cache_dtype if profile else None)
    shm = SHM_GIB if tp > 1 else 0
    download_job = download_enabled(spec)
    budget = spec.probes.startup_budget_seconds or startup_budget(
        facts.name, downloads=not (spec.model_cache.offline or download_job)
    )
    sd = spec.shutdown
    custom = acc.custom
    return Resolved(
        model=facts.name,
        repository=spec.model.repository or facts.repository,
        served_model_name=spec.api.served_model_name or facts.repository,
        profile=acc.profile,
        resource_name=custom.resource_name if custom else GPU_RESOURCE,
        gpu_node_labels=tuple(sorted(gpu_node_labels.get(acc.profile, {}).items()))
        if acc.profile
        else (),
        node_selector=tuple(sorted(custom.node_selector.items())) if custom else (),
        tensor_parallel_size=tp,
        gpus_per_replica=tp,
        gpu_memory_utilization=utilization,
        max_model_len=engine.max_model_len or MAX_CONTEXT,
        max_num_batched_tokens=batched,
        max_cudagraph_capture_size=cudagraph,
        kv_cache_dtype=kv_dtype,
        image=spec.image,
        version=_version(spec.image),
        port=CONTAINER_PORT,
        service_port=spec.service.port,
        cpu=spec.resources.cpu or str(cpu_request(tp)),
        memory=spec.resources.memory or f"{int(facts.memory.removesuffix('Gi')) + shm}Gi",
        shm_gib=shm,
        cache_disk_gib=None
        if spec.model_cache.existing_claim_name or spec.model_cache.size
        else facts.cache_disk_gib,
        download_job=download_job,
        startup_budget_seconds=budget,
        progress_deadline_seconds=spec.rollout.progress_deadline_seconds
        or budget + PROGRESS_SLACK_SECONDS,
        termination_grace_period_seconds=sd.termination_grace_period_seconds
        or sd.pre_stop_sleep_seconds + sd.drain_seconds + GRACE_BUFFER_SECONDS,
    )


def cache_claim_name(name: str, spec: GptOssDeploymentSpec) -> str | None:
    """The PVC mounted at HF_HOME, or None for a per-pod emptyDir."""
    cache = spec.model_cache
    if cache.existing_claim_name:
        return cache.existing_claim_name
    return f"{name}-model-cache" if cache.size else None


def download_enabled(spec: GptOssDeploymentSpec) -> bool:
    """Whether a download Job fills the claim: a claim exists, the Job is on (default for a
    claim the operator creates) and the repository is not a local path."""
    cache = spec.model_cache
    if not (cache.size or cache.existing_claim_name):
        return False
    if (spec.model.repository or "").startswith(("/", ".")):
        return False
    enabled = cache.download.enabled
    return enabled if enabled is not None else bool(cache.size and not cache.existing_claim_name)


def selector_labels(name: str) -> dict[str, str]:
    """Labels that select the pods of one GptOssDeployment (Deployment, Service, PDB, scale)."""
    return {"app.kubernetes.io/name": APP_NAME, INSTANCE_LABEL: name}


def labels(name: str, resolved: Resolved, component: str = COMPONENT) -> dict[str, str]:
    """The app.kubernetes.io labels of every child."""
    return {
        **selector_labels(name),
        "app.kubernetes.io/component": component,
        MANAGED_BY_LABEL: MANAGED_BY,
        "app.kubernetes.io/version": resolved.version,
        MODEL_LABEL: resolved.model,
    }


def endpoint_url(name: str, namespace: str, spec: GptOssDeploymentSpec) -> str:
    """In-cluster base URL for OpenAI clients."""
    return f"http://{name}.{namespace}.svc.cluster.local:{spec.service.port}/v1"
