"""What the operator knows about the gpt-oss models and the GPUs they run on, and its defaults.

Every number here is a fact from a public source (linked next to it) or a derivation from those
facts that is spelled out in a comment. Defaults (tensor parallel size, recipe flags, startup
budgets) are computed here and nowhere else, so the CRD's CEL rules, the renderer and the
generated docs cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# The one vLLM version: the default image tag and the `vllm` extra in pyproject.toml (a unit test
# checks both). Flag names below are those of this release's `vllm serve` parser (contract test).
VLLM_VERSION = "0.33.0"
IMAGE_REPOSITORY = "vllm/vllm-openai"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:v{VLLM_VERSION}"

# Tensor parallel sizes that divide gpt-oss's 64 query heads and 8 KV heads evenly (TP > 8 would
# split a KV head). https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json
TP_CHOICES: tuple[int, ...] = (1, 2, 4, 8)
MAX_CONTEXT = 131072
GPU_RESOURCE = "nvidia.com/gpu"
# GPU Feature Discovery's product label: https://github.com/NVIDIA/k8s-device-plugin#gpu-feature-discovery
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# A TP size is allowed when the weights plus this share fit in TP x GPU memory (the recipe runs
# 120b at TP1 on one H100 with tuning: https://docs.vllm.ai/projects/recipes/en/latest/OpenAI/GPT-OSS.html).
WEIGHTS_MARGIN = 0.05

ModelName = Literal["gpt-oss-20b", "gpt-oss-120b"]
ProfileName = Literal["H100-80GB", "H200", "A100-80GB", "A100-40GB", "L40S", "L4", "B200"]
Architecture = Literal["ampere", "ada", "hopper", "blackwell"]


@dataclass(frozen=True)
class ModelFacts:
    """Published facts about one gpt-oss model and the operator's sizing for it."""

    name: str
    repository: str
    parameters: str
    active_parameters: str
    weights_gib: float
    """Weights resident in vLLM (MXFP4 experts, BF16 rest)."""
    kv_reserve_gib: float
    """KV cache the default TP must leave room for (a few full-context sequences)."""
    vram_minimum_gb: int
    context_length: int
    attention_heads: int
    kv_heads: int
    startup_budget_seconds: int
    """Start-to-ready with weights already on the cache volume (load, compile, CUDA graphs)."""
    download_budget_seconds: int
    """Extra time when the pod downloads the weights itself (no offline mode)."""
    memory: str
    """Host memory of one replica, before the /dev/shm volume is added."""
    cache_disk_gib: int
    """Disk the model-cache volume needs: the safetensors files (vLLM skips the repository's
    `original/` and `metal/` copies, vllm/model_executor/model_loader/weight_utils.py) plus room
    for the torch.compile cache (VLLM_CACHE_ROOT) and the tokenizer files."""
    download_gb: float
    """Size of what the download Job fetches (the repository without `original/` and `metal/`),
    in GB: the estimate behind status.weights' bytes."""
    safetensors_shards: int
    """Weight files of the repository: the download Job's default number of parts."""
    download_deadline_seconds: int
    """Default activeDeadlineSeconds of the download Job."""
    sources: tuple[str, ...]

    @property
    def min_vram_gib(self) -> int:
        """GPU memory (all GPUs of a replica together) that TP validation requires."""
        return math.ceil(self.weights_gib * (1 + WEIGHTS_MARGIN))


# Sources: model cards, the recipe schema models/openai/gpt-oss-{20b,120b}.yaml in
# vllm-project/recipes, and the launch blog ("63 GB (120B) and 14 GB (20B)").
# KV per token (BF16): 2 x 8 KV heads x 64 dims x 2 B per full-attention layer: 120b ~4.5 GiB and
# 20b ~3 GiB per 131k-token sequence, hence reserves of ~3.5 and 2 such sequences.
MODELS: dict[str, ModelFacts] = {
    "gpt-oss-20b": ModelFacts(
        name="gpt-oss-20b",
        repository="openai/gpt-oss-20b",
        parameters="21B",
        active_parameters="3.6B",
        weights_gib=13.0,
        kv_reserve_gib=6.0,
        vram_minimum_gb=16,
        context_length=MAX_CONTEXT,
        attention_heads=64,
        kv_heads=8,
        startup_budget_seconds=600,
        download_budget_seconds=600,
        memory="32Gi",
        cache_disk_gib=20,  # 13.8 GB of safetensors
        # model-0000{0,1,2}-of-00002.safetensors, 13.8 GB, plus tokenizer and config files.
        download_gb=13.8,
        safetensors_shards=3,
        download_deadline_seconds=3600,
        sources=(
            "https://huggingface.co/openai/gpt-oss-20b",
            "https://github.com/vllm-project/recipes/blob/main/models/openai/gpt-oss-20b.yaml",
            "https://blog.vllm.ai/2025/08/05/gpt-oss.html",
            "https://arxiv.org/abs/2508.10925",
        ),
    ),
    "gpt-oss-120b": ModelFacts(
        name="gpt-oss-120b",
        repository="openai/gpt-oss-120b",
        parameters="117B",
        active_parameters="5.1B",
        weights_gib=61.0,
        kv_reserve_gib=16.0,
        vram_minimum_gb=80,
        context_length=MAX_CONTEXT,
        attention_heads=64,
        kv_heads=8,
        startup_budget_seconds=900,
        # 65 GB at 100 MB/s is ~11 min; vllm#17676 reports 10-40 min on network storage.
        download_budget_seconds=1800,
        memory="96Gi",
        cache_disk_gib=80,  # 65.2 GB of safetensors
        # model-000{00..14}-of-00014.safetensors, 65.2 GB, plus tokenizer and config files.
        download_gb=65.2,
        safetensors_shards=15,
        download_deadline_seconds=10800,
        sources=(
            "https://huggingface.co/openai/gpt-oss-120b",
            "https://github.com/vllm-project/recipes/blob/main/models/openai/gpt-oss-120b.yaml",
            "https://blog.vllm.ai/2025/08/05/gpt-oss.html",
            "https://github.com/vllm-project/vllm/issues/17676",
        ),
    ),
}


@dataclass(frozen=True)
class GpuProfile:
    """A named GPU type: where it is scheduled and the recipe settings for its architecture."""

    name: str
    memory_gib: float
    """Memory of one GPU as the driver reports it (`nvidia-smi` memory.total, MiB / 1024): what
    vLLM's `--gpu-memory-utilization` is a share of, a little below the marketing GB."""
    architecture: Architecture
    product_labels: tuple[str, ...]
    gpus_per_node: int
    device_name: str
    """The name CUDA reports (`torch.cuda.get_device_name`), which vLLM's batch defaults look at."""
    sources: tuple[str, ...]
    """Where the memory, GPUs per node and label values come from."""
    recipe_batched_tokens: int | None = None
    """`--max-num-batched-tokens` from the recipe's YAML for this architecture; None: the recipe
    gives none and vLLM's per-device default applies (`vllm_default_batched_tokens`)."""
    cudagraph_capture_size: int | None = None
    """`--max-cudagraph-capture-size` from the recipe's YAML; None: vLLM's default."""
    kv_cache_dtype: str | None = None

    @property
    def vllm_default_batched_tokens(self) -> int:
        """vLLM 0.33's `--max-num-batched-tokens` for the API server on this GPU.

        `EngineArgs.get_batch_defaults` (vllm/engine/arg_utils.py): 16384 at 160 GiB or more,
        8192 at 70 GiB or more unless the name says A100 (vLLM PR #17885: larger values cut A100
        throughput), 2048 otherwise. The contract test runs that function for every profile.
        """
        if self.memory_gib >= 160:
            return 16384
        if self.memory_gib >= 70 and "a100" not in self.device_name.lower():
            return 8192
        return 2048


# Recipe "Recipe for NVIDIA Blackwell & Hopper Hardware": GPT-OSS_Hopper.yaml and
# GPT-OSS_Blackwell.yaml (vllm-project/recipes OpenAI/) set max-num-batched-tokens 8192 and
# max-cudagraph-capture-size 2048, Blackwell adds kv-cache-dtype fp8. Ampere and Ada get nothing:
# the recipe's A100 section runs plain `vllm serve`, vLLM picks the Triton attention backend and
# Marlin MXFP4 MoE by itself, and its per-device batch default (2048 below 70 GiB and on A100).
# The recipe's Blackwell env var VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8 is gone from vLLM 0.33's
# vllm/envs.py (it would be ignored): 0.33 picks the MoE kernel in
# vllm/model_executor/layers/fused_moe/oracle/mxfp4.py, whose gpt-oss priority list starts with
# FlashInfer TRT-LLM MXFP4 (BF16 activations, the reference precision) on SM100. The recipe's
# MXFP8-activation variant trades accuracy for speed; opting in is left to extraArgs
# (`--moe-backend` and the quantization config's MoE activation).
RECIPE = "https://docs.vllm.ai/projects/recipes/en/latest/OpenAI/GPT-OSS.html"
_RECIPE_BATCHED_TOKENS = 8192
_RECIPE_CUDAGRAPH = 2048

# Product label values as GPU Feature Discovery publishes them (nvidia-smi product name, spaces
# turned into dashes), one profile covering the SXM and PCIe/NVL variants of the same memory size
# (the smaller memory of the variants counts). Memory: nvidia-smi memory.total in MiB / 1024.
_GFD = "https://github.com/NVIDIA/k8s-device-plugin#gpu-feature-discovery"
PROFILES: dict[str, GpuProfile] = {
    "H100-80GB": GpuProfile(
        "H100-80GB",
        79.6,  # 81559 MiB
        "hopper",
        ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL"),
        8,  # HGX/DGX H100, AWS p5.48xlarge, GCP a3-highgpu-8g
        "NVIDIA H100 80GB HBM3",
        (RECIPE, _GFD, "https://aws.amazon.com/ec2/instance-types/p5/"),
        _RECIPE_BATCHED_TOKENS,
        _RECIPE_CUDAGRAPH,
    ),
    "H200": GpuProfile(
        "H200",
        140.4,  # 143771 MiB
        "hopper",
        ("NVIDIA-H200", "NVIDIA-H200-NVL"),
        8,  # HGX H200, AWS p5e.48xlarge
        "NVIDIA H200",
        (RECIPE, _GFD, "https://aws.amazon.com/ec2/instance-types/p5/"),
        _RECIPE_BATCHED_TOKENS,
        _RECIPE_CUDAGRAPH,
    ),
    "A100-80GB": GpuProfile(
        "A100-80GB",
        80,  # 81920 MiB
        "ampere",
        ("NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"),
        8,  # DGX A100, AWS p4de.24xlarge
        "NVIDIA A100-SXM4-80GB",
        (RECIPE, _GFD, "https://aws.amazon.com/ec2/instance-types/p4/"),
    ),
    "A100-40GB": GpuProfile(
        "A100-40GB",
        40,  # 40960 MiB
        "ampere",
        ("NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"),
        8,  # AWS p4d.24xlarge, GCP a2-highgpu-8g
        "NVIDIA A100-SXM4-40GB",
        (RECIPE, _GFD, "https://aws.amazon.com/ec2/instance-types/p4/"),
    ),
    "L40S": GpuProfile(
        "L40S",
        45.0,  # 46068 MiB with ECC on (default), marketed as 48 GB
        "ada",
        ("NVIDIA-L40S",),
        4,  # AWS g6e.12xlarge/24xlarge (g6e.48xlarge has 8)
        "NVIDIA L40S",
        (
            _GFD,
            "https://github.com/akash-network/provider-configs/pull/99",
            "https://aws.amazon.com/ec2/instance-types/g6e/",
        ),
    ),
    "L4": GpuProfile(
        "L4",
        22.5,  # 23034 MiB, marketed as 24 GB
        "ada",
        ("NVIDIA-L4",),
        # L4 servers carry 1, 2, 4 or 8: GCP g2-standard-48 and AWS g6.12xlarge/24xlarge have 4,
        # g2-standard-96 and g6.48xlarge have 8. 4 is the most GPUs both common multi-GPU shapes
        # offer; set accelerator.gpusPerNode for 8- or 1-GPU nodes.
        4,
        "NVIDIA L4",
        (
            _GFD,
            "https://cloud.google.com/compute/docs/gpus#l4-gpus",
            "https://aws.amazon.com/ec2/instance-types/g6/",
        ),
    ),
    "B200": GpuProfile(
        "B200",
        179.0,  # 183359 MiB
        "blackwell",
        ("NVIDIA-B200",),
        8,  # HGX/DGX B200, AWS p6-b200.48xlarge
        "NVIDIA B200",
        (RECIPE, _GFD, "https://aws.amazon.com/ec2/instance-types/p6/"),
        _RECIPE_BATCHED_TOKENS,
        _RECIPE_CUDAGRAPH,
        "fp8",
    ),
}
DEFAULT_PROFILE = "H100-80GB"
# Sentinel minimum TP for a model that does not fit in 8 GPUs of a profile.
NEVER_FITS = 16


def min_tensor_parallel(model: str, memory_gib: float) -> int:
    """Smallest TP (a power of two, possibly beyond 8) whose GPUs hold the weights with margin."""
    need = MODELS[model].min_vram_gib
    for tp in TP_CHOICES:
        if tp * memory_gib >= need:
            return tp
    return NEVER_FITS


def profile_min_tensor_parallel(model: str, profile: str) -> int:
    """The minimum TP for `model` on a named profile; used by CEL and validation."""
    return min_tensor_parallel(model, PROFILES[profile].memory_gib)


def fits_comfortably(model: str, tp: int, memory_gib: float, utilization: float) -> bool:
    """True when weights plus the KV reserve fit in the memory vLLM may use at this TP."""
    facts = MODELS[model]
    return facts.weights_gib + facts.kv_reserve_gib <= tp * memory_gib * utilization


def default_tensor_parallel(
    model: str, memory_gib: float, gpus_per_node: int, utilization: float = 0.9
) -> int | None:
    """The TP used when the spec leaves it out, or None when the model cannot fit on one node.

    The smallest allowed TP that leaves a comfortable KV pool; when none on the node does, the
    largest TP the node offers that still holds the weights.
    """
    allowed = [
        tp for tp in TP_CHOICES if min_tensor_parallel(model, memory_gib) <= tp <= gpus_per_node
    ]
    for tp in allowed:
        if fits_comfortably(model, tp, memory_gib, utilization):
            return tp
    return allowed[-1] if allowed else None


def cpu_request(gpus: int) -> int:
    """vCPUs for a replica on `gpus` GPUs: vLLM asks for at least 2 x (2 + N) ("CPU Resources
    for GPU Deployments", https://docs.vllm.ai/en/latest/configuration/optimization.html): the
    API server, the engine core and a process per GPU each want cores of their own."""
    return 2 * (2 + gpus)


GpuNodeLabels = dict[str, dict[str, tuple[str, ...]]]
"""Per profile: node label key -> values a node of that GPU type carries (any key matches)."""

DEFAULT_GPU_NODE_LABELS: GpuNodeLabels = {
    p.name: {GPU_PRODUCT_LABEL: p.product_labels} for p in PROFILES.values()
}
"""GPU feature discovery's labels; the operator's --gpu-node-labels replaces them per profile."""


def startup_budget(model: str, downloads: bool) -> int:
    """Seconds from container start to a healthy server, longer when weights download in-pod."""
    facts = MODELS[model]
    return facts.startup_budget_seconds + (facts.download_budget_seconds if downloads else 0)
