"""What the operator knows about the gpt-oss models and the GPUs they run on, and its defaults.

Every number here is a fact from a public source (linked next to it) or a derivation from those
facts that is spelled out in a comment. Defaults (tensor parallel size, recipe flags, startup
budgets) are computed here and nowhere else, so the CRD's CEL rules, the renderer and the
generated docs cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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
    cpu: str
    memory: str

    @property
    def min_vram_gib(self) -> int:
        """GPU memory (all GPUs of a replica together) that TP validation requires."""
        return math.ceil(self.weights_gib * (1 + WEIGHTS_MARGIN))


# Sources: model cards https://huggingface.co/openai/gpt-oss-20b, https://huggingface.co/openai/gpt-oss-120b,
# arXiv:2508.10925; recipe schema models/openai/gpt-oss-{20b,120b}.yaml in vllm-project/recipes;
# launch blog https://blog.vllm.ai/2025/08/05/gpt-oss.html ("63 GB (120B) and 14 GB (20B)").
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
        cpu="4",
        memory="32Gi",
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
        cpu="8",
        memory="96Gi",
    ),
}


@dataclass(frozen=True)
class GpuProfile:
    """A named GPU type: where it is scheduled and the recipe settings for its architecture."""

    name: str
    memory_gib: float
    architecture: Architecture
    product_labels: tuple[str, ...]
    gpus_per_node: int
    flags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    kv_cache_dtype: str | None = None


# Recipe "Recipe for NVIDIA Blackwell & Hopper Hardware": GPT-OSS_Hopper.yaml and
# GPT-OSS_Blackwell.yaml (vllm-project/recipes OpenAI/). Ampere and Ada need nothing: vLLM picks
# the Triton attention backend and Marlin MXFP4 MoE by itself.
_CUDAGRAPH = ("--max-cudagraph-capture-size", "2048")
# "Use FlashInfer MXFP4+MXFP8 MoE"; without it Blackwell hits "Sinks must be of type float32".
_BLACKWELL_ENV = (("VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8", "1"),)

# Product label values as GPU Feature Discovery publishes them (nvidia-smi product name, spaces
# turned into dashes), one profile covering the SXM and PCIe/NVL variants of the same memory size.
PROFILES: dict[str, GpuProfile] = {
    "H100-80GB": GpuProfile(
        "H100-80GB",
        80,
        "hopper",
        ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL"),
        8,
        _CUDAGRAPH,
    ),
    "H200": GpuProfile("H200", 141, "hopper", ("NVIDIA-H200", "NVIDIA-H200-NVL"), 8, _CUDAGRAPH),
    "A100-80GB": GpuProfile(
        "A100-80GB", 80, "ampere", ("NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"), 8
    ),
    "A100-40GB": GpuProfile(
        "A100-40GB", 40, "ampere", ("NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"), 8
    ),
    "L40S": GpuProfile("L40S", 48, "ada", ("NVIDIA-L40S",), 4),
    "L4": GpuProfile("L4", 24, "ada", ("NVIDIA-L4",), 1),
    "B200": GpuProfile(
        "B200", 180, "blackwell", ("NVIDIA-B200",), 8, _CUDAGRAPH, _BLACKWELL_ENV, "fp8"
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


@dataclass(frozen=True)
class Recipe:
    """The recipe's per-architecture additions to the command line and environment."""

    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    kv_cache_dtype: str | None = None


def recipe(profile: str | None) -> Recipe:
    """Recipe flags and env for a profile; a custom accelerator gets none."""
    if profile is None:
        return Recipe()
    p = PROFILES[profile]
    return Recipe(p.flags, dict(p.env), p.kv_cache_dtype)


def startup_budget(model: str, downloads: bool) -> int:
    """Seconds from container start to a healthy server, longer when weights download in-pod."""
    facts = MODELS[model]
    return facts.startup_budget_seconds + (facts.download_budget_seconds if downloads else 0)
