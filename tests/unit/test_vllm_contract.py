"""Every rendered command line must parse with the pinned vLLM's own `vllm serve` parser.

Needs the `vllm` extra (`make .venv/.vllm`); CI installs it, so a missing vLLM fails instead of
skipping. Importing vLLM takes ~30 s, hence one module-scoped parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matrix import matrix

from gptoss_operator.catalog import PROFILES, VLLM_VERSION, GpuProfile
from gptoss_operator.render import render_children, resolve
from gptoss_operator.validation import parse_spec
from support.bad_specs import GOOD_EXTRA_ARGS
from support.tools import load_tool

pytestmark = pytest.mark.contract

CASES = matrix()
ROOT = Path(__file__).resolve().parents[2]
Parse = Callable[[list[str]], Any]


def _container(spec: Any) -> dict[str, Any]:
    children = render_children("m", "ns", spec)
    (deployment,) = [c for c in children if c["kind"] == "Deployment"]
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize(("case_id", "spec"), CASES, ids=[c for c, _ in CASES])
def test_command_line_parses(vllm_serve: Parse, case_id: str, spec: Any) -> None:
    container = _container(spec)
    assert container["command"] == ["vllm", "serve"]
    ns = vllm_serve(container["args"])
    assert ns.model_tag == container["args"][0]
    assert ns.tensor_parallel_size == int(
        container["args"][container["args"].index("--tensor-parallel-size") + 1]
    )
    assert ns.host == "0.0.0.0"  # noqa: S104
    assert ns.port == 8000
    assert ns.shutdown_timeout == spec.shutdown.drain_seconds
    assert ns.reasoning_parser == spec.api.reasoning_parser
    r = resolve(spec)
    # None (flag not rendered) leaves vLLM's per-device default in place.
    assert ns.max_num_batched_tokens == r.max_num_batched_tokens
    assert ns.max_cudagraph_capture_size == r.max_cudagraph_capture_size


@pytest.mark.parametrize(("case_id", "spec"), CASES, ids=[c for c, _ in CASES])
def test_every_vllm_env_var_is_read_by_vllm(vllm_serve: Parse, case_id: str, spec: Any) -> None:
    """vLLM ignores (with a warning) a VLLM_* variable it does not know: render none of those."""
    from vllm import envs

    names = [e["name"] for e in _container(spec)["env"] if e["name"].startswith("VLLM_")]
    assert names, "expected at least VLLM_CACHE_ROOT and VLLM_NO_USAGE_STATS"
    unknown = [n for n in names if n not in envs.environment_variables]
    assert unknown == [], f"not read by vLLM {VLLM_VERSION} (vllm/envs.py): {unknown}"


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_batch_default_matches_vllm(
    vllm_serve: Parse, monkeypatch: pytest.MonkeyPatch, profile: GpuProfile
) -> None:
    """Where the operator leaves --max-num-batched-tokens to vLLM, docs/defaults.md states what
    vLLM picks: run vLLM's own choice for this GPU's memory and CUDA device name."""
    from vllm.engine.arg_utils import EngineArgs
    from vllm.platforms import current_platform
    from vllm.usage.usage_lib import UsageContext

    platform = type(current_platform)
    gib = 1 << 30
    monkeypatch.setattr(
        platform,
        "get_device_total_memory",
        classmethod(lambda cls, device_id=0: int(profile.memory_gib * gib)),
    )
    monkeypatch.setattr(
        platform, "get_device_name", classmethod(lambda cls, device_id=0: profile.device_name)
    )
    monkeypatch.setattr(
        platform, "is_device_capability", classmethod(lambda cls, cap, device_id=0: False)
    )
    monkeypatch.setattr(platform, "is_tpu", classmethod(lambda cls: False))
    monkeypatch.setattr(platform, "is_cpu", classmethod(lambda cls: False))
    batched, _ = EngineArgs.get_batch_defaults(world_size=1)
    assert batched[UsageContext.OPENAI_API_SERVER] == profile.vllm_default_batched_tokens


def test_vllm_files_cited_in_the_docs_exist(vllm_serve: Parse) -> None:
    """docs/defaults.md cites vLLM source files as sources: they must exist in the pinned wheel."""
    import vllm

    root = Path(vllm.__file__).parent.parent
    text = (Path(__file__).resolve().parents[2] / "docs" / "defaults.md").read_text()
    cited = set(re.findall(r"`(vllm/[\w/]+\.py)`", text))
    assert len(cited) >= 4, cited
    missing = [c for c in sorted(cited) if not (root / c).is_file()]
    assert missing == [], f"not in vLLM {VLLM_VERSION}: {missing}"


def test_b200_moe_kernel_is_vllms_own_choice(vllm_serve: Parse) -> None:
    """The recipe's Blackwell env var is gone; vLLM's gpt-oss MXFP4 MoE priority list starts
    with FlashInfer TRT-LLM (BF16 activations), the kernel the recipe asked for."""
    from vllm import envs
    from vllm.model_executor.layers.fused_moe.oracle import mxfp4

    assert "VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8" not in envs.environment_variables
    assert "VLLM_CACHE_ROOT" in envs.environment_variables
    first = mxfp4._get_priority_backends_for_gpt_oss()[0]
    assert first == mxfp4.Mxfp4MoeBackend.FLASHINFER_TRTLLM_MXFP4_BF16


def test_parser_names_exist_in_registries(vllm_serve: Parse) -> None:
    from vllm.reasoning.abs_reasoning_parsers import ReasoningParserManager
    from vllm.tool_parsers.abstract_tool_parser import ToolParserManager

    assert "openai" in ToolParserManager.list_registered()
    assert "openai_gptoss" in ReasoningParserManager.list_registered()


def test_managed_flags_are_real_vllm_flags(vllm_serve: Parse) -> None:
    from gptoss_operator import flags

    known: set[str] = vllm_serve.known_flags  # type: ignore[attr-defined]
    missing = [f for f in flags.MANAGED_FLAGS if "_" not in f and f not in known]
    assert missing == [], f"not flags of vllm serve {VLLM_VERSION}: {missing}"


def test_vllm_flags_match_the_installed_parser(vllm_serve: Parse) -> None:
    """operator/gptoss_operator/vllm_flags.py is what vLLM's parser says: `make vllm-flags`."""
    committed = (ROOT / "operator" / "gptoss_operator" / "vllm_flags.py").read_text()
    assert committed == load_tool("vllm/flagsgen.py").render(), (
        "vllm_flags.py drifted: run `make vllm-flags`"
    )


def test_unknown_flag_is_rejected(vllm_serve: Parse) -> None:
    with pytest.raises(pytest.fail.Exception):
        vllm_serve(["m", "--no-such-flag-in-vllm"])


@pytest.mark.parametrize("args", GOOD_EXTRA_ARGS, ids=[a[0] for a in GOOD_EXTRA_ARGS])
def test_good_extra_args_parse_and_managed_flags_win(vllm_serve: Parse, args: list[str]) -> None:
    spec = parse_spec({"model": {"name": "gpt-oss-20b"}, "engine": {"extraArgs": args}})
    (deployment,) = [c for c in render_children("m", "ns", spec) if c["kind"] == "Deployment"]
    rendered = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    ns = vllm_serve(rendered)
    assert (ns.port, ns.host, ns.tensor_parallel_size) == (8000, "0.0.0.0", 1)  # noqa: S104


def test_managed_flags_come_last(vllm_serve: Parse) -> None:
    """argparse keeps the last value: a managed flag slipped into extraArgs (a CRD older than the
    rule, say) still loses to the operator's, which follow it."""
    from gptoss_operator.render.command import managed_args
    from gptoss_operator.render.resolve import resolve

    spec = parse_spec({"model": {"name": "gpt-oss-20b"}})
    args = ["openai/gpt-oss-20b", "--port", "9000", "-tp", "4", *managed_args(spec, resolve(spec))]
    ns = vllm_serve(args)
    assert (ns.port, ns.tensor_parallel_size) == (8000, 1)


PROBE_VALUES = ("x", "1", "-1", "0.5", "-0.5", "1.5k", "1k", "{}", "[]", "a=/p", "a.b", "None", "")


def test_every_value_admission_takes_vllm_parses(vllm_serve: Parse) -> None:
    """Each allowed flag with probe values of every kind: what extra_args_error (and so the CEL
    rule) admits, vLLM's parser reads (JSON objects are checked against vLLM's config classes
    only when vLLM starts, so `{}`, valid for all of them, is the JSON probe)."""
    from gptoss_operator.flags import ALLOWED_FLAGS, extra_args_error

    parser = vllm_serve.parser  # type: ignore[attr-defined]
    refused = []
    for flag, arity in ALLOWED_FLAGS.items():
        for args in ([flag],) if arity == "0" else ([flag, v] for v in PROBE_VALUES):
            if extra_args_error(args) is not None:
                continue
            try:
                parser.parse_args(["serve", "m", *args])
            except SystemExit:
                refused.append(args)
    assert refused == [], f"admitted but refused by vllm serve: {refused}"
