"""Catalog defaults: the tensor parallel sizes and recipe settings each model gets."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.catalog import DEFAULT_IMAGE, MODELS, PROFILES, RECIPE, VLLM_VERSION
from gptoss_operator.render import resolve
from gptoss_operator.render.command import vllm_args, vllm_env

ROOT = Path(__file__).resolve().parents[2]


def _spec(model: str, profile: str, **extra: object) -> GptOssDeploymentSpec:
    raw = {"model": {"name": model}, "accelerator": {"profile": profile}, **extra}
    return GptOssDeploymentSpec.model_validate(raw)


@pytest.mark.parametrize(
    ("model", "profile", "tp"),
    [
        ("gpt-oss-120b", "H100-80GB", 2),
        ("gpt-oss-120b", "H200", 1),
        ("gpt-oss-120b", "B200", 1),
        ("gpt-oss-120b", "A100-40GB", 4),
        ("gpt-oss-120b", "L40S", 2),
        ("gpt-oss-120b", "L4", 4),
        *[("gpt-oss-20b", p, 1) for p in PROFILES],
    ],
)
def test_default_tensor_parallel(model: str, profile: str, tp: int) -> None:
    assert resolve(_spec(model, profile)).tensor_parallel_size == tp


def test_vllm_pin_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pin,) = project["project"]["optional-dependencies"]["vllm"]
    assert pin == f"vllm=={VLLM_VERSION}"
    assert f"vllm/vllm-openai:v{VLLM_VERSION}" == DEFAULT_IMAGE


def test_model_facts_bound_tensor_parallel() -> None:
    for facts in MODELS.values():
        assert facts.attention_heads % 8 == 0
        assert facts.kv_heads == 8
        assert facts.context_length == 131072


def test_product_labels_are_gfd_values() -> None:
    assert "NVIDIA-H100-80GB-HBM3" in PROFILES["H100-80GB"].product_labels
    assert "NVIDIA-A100-SXM4-40GB" in PROFILES["A100-40GB"].product_labels
    assert "NVIDIA-L40S" in PROFILES["L40S"].product_labels
    for profile in PROFILES.values():
        assert all(re.fullmatch(r"NVIDIA-[A-Za-z0-9-]+", v) for v in profile.product_labels)


def _args(spec: GptOssDeploymentSpec) -> list[str]:
    return vllm_args(spec, resolve(spec))


def _flag(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def test_blackwell_recipe() -> None:
    spec = _spec("gpt-oss-120b", "B200")
    args = _args(spec)
    assert _flag(args, "--kv-cache-dtype") == "fp8"
    assert _flag(args, "--max-num-batched-tokens") == "8192"
    assert _flag(args, "--max-cudagraph-capture-size") == "2048"
    env = {e["name"] for e in vllm_env(spec, resolve(spec))}
    # vLLM 0.33 reads no such variable; the contract test checks every VLLM_* name.
    assert "VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8" not in env


@pytest.mark.parametrize("profile", ["A100-80GB", "A100-40GB", "L40S", "L4"])
def test_ampere_and_ada_leave_vllm_defaults(profile: str) -> None:
    args = _args(_spec("gpt-oss-20b", profile))
    for flag in ("--max-num-batched-tokens", "--max-cudagraph-capture-size", "--kv-cache-dtype"):
        assert flag not in args, flag
    assert PROFILES[profile].vllm_default_batched_tokens == 2048


@pytest.mark.parametrize(("profile", "tokens"), [("H100-80GB", 8192), ("H200", 8192)])
def test_hopper_gets_the_recipe_batch(profile: str, tokens: int) -> None:
    assert _flag(_args(_spec("gpt-oss-20b", profile)), "--max-num-batched-tokens") == str(tokens)


def test_batch_and_cudagraph_fields_override_the_recipe() -> None:
    engine = {"maxNumBatchedTokens": 4096, "maxCudagraphCaptureSize": 512}
    args = _args(_spec("gpt-oss-20b", "L4", engine=engine))
    assert _flag(args, "--max-num-batched-tokens") == "4096"
    assert _flag(args, "--max-cudagraph-capture-size") == "512"


@pytest.mark.parametrize(("tp", "cpu"), [(1, "6"), (2, "8"), (4, "12"), (8, "20")])
def test_cpu_grows_with_gpus(tp: int, cpu: str) -> None:
    assert resolve(_spec("gpt-oss-20b", "H100-80GB", tensorParallelSize=tp)).cpu == cpu
    own = _spec("gpt-oss-20b", "H100-80GB", tensorParallelSize=tp, resources={"cpu": "3"})
    assert resolve(own).cpu == "3"


def test_usable_memory_below_marketing_figure() -> None:
    marketed = {"H100-80GB": 80, "H200": 141, "L40S": 48, "L4": 24, "B200": 180}
    for name, gb in marketed.items():
        assert PROFILES[name].memory_gib < gb, name


def test_every_catalog_entry_cites_a_source() -> None:
    """The held-out check: nothing in the catalog that no source supports."""
    for entry in (*PROFILES.values(), *MODELS.values()):
        assert entry.sources, entry.name
        for source in entry.sources:
            assert re.fullmatch(r"https://[\w./#?=:-]+", source), (entry.name, source)
    for profile in PROFILES.values():
        # Recipe values only on the architectures the recipe covers.
        if profile.recipe_batched_tokens or profile.cudagraph_capture_size:
            assert profile.architecture in ("hopper", "blackwell"), profile.name
            assert RECIPE in profile.sources, profile.name


def test_tight_tp1_uses_recipe_tuning_unless_set() -> None:
    r = resolve(_spec("gpt-oss-120b", "H100-80GB", tensorParallelSize=1))
    assert (r.gpu_memory_utilization, r.max_num_batched_tokens) == (0.95, 1024)
    explicit = _spec(
        "gpt-oss-120b", "H100-80GB", tensorParallelSize=1, engine={"gpuMemoryUtilization": 0.9}
    )
    assert resolve(explicit).gpu_memory_utilization == 0.9


def test_startup_budget_longer_for_120b_and_downloads() -> None:
    small = resolve(_spec("gpt-oss-20b", "H100-80GB")).startup_budget_seconds
    big = resolve(_spec("gpt-oss-120b", "H100-80GB")).startup_budget_seconds
    offline = resolve(
        _spec(
            "gpt-oss-120b",
            "H100-80GB",
            modelCache={"existingClaimName": "w", "offline": True},
        )
    ).startup_budget_seconds
    assert small < big
    assert offline < big
    r = resolve(_spec("gpt-oss-120b", "H100-80GB"))
    assert r.progress_deadline_seconds > r.startup_budget_seconds


def test_defaults_short_spec() -> None:
    spec = GptOssDeploymentSpec.model_validate({"model": {"name": "gpt-oss-20b"}})
    r = resolve(spec)
    assert spec.replicas == 1
    assert spec.accelerator.profile == "H100-80GB"
    assert r.served_model_name == "openai/gpt-oss-20b"
    assert r.image == DEFAULT_IMAGE
    assert spec.engine.gpu_memory_utilization == 0.90
