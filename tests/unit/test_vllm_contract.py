"""Every rendered command line must parse with the pinned vLLM's own `vllm serve` parser.

Needs the `vllm` extra (`make .venv/.vllm`); CI installs it, so a missing vLLM fails instead of
skipping. Importing vLLM takes ~30 s, hence one module-scoped parser.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matrix import matrix

from gptoss_operator.catalog import VLLM_VERSION
from gptoss_operator.render import render_children
from gptoss_operator.validation import parse_spec
from support.bad_specs import GOOD_EXTRA_ARGS

pytestmark = pytest.mark.contract

CASES = matrix()
ROOT = Path(__file__).resolve().parents[2]
Parse = Callable[[list[str]], Any]


@pytest.mark.parametrize(("case_id", "spec"), CASES, ids=[c for c, _ in CASES])
def test_command_line_parses(vllm_serve: Parse, case_id: str, spec: Any) -> None:
    children = render_children("m", "ns", spec)
    (deployment,) = [c for c in children if c["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
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


def _flagsgen() -> Any:
    spec = importlib.util.spec_from_file_location(
        "flagsgen", ROOT / "tools" / "vllm" / "flagsgen.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vllm_flags_match_the_installed_parser(vllm_serve: Parse) -> None:
    """operator/gptoss_operator/vllm_flags.py is what vLLM's parser says: `make vllm-flags`."""
    committed = (ROOT / "operator" / "gptoss_operator" / "vllm_flags.py").read_text()
    assert committed == _flagsgen().render(), "vllm_flags.py drifted: run `make vllm-flags`"


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
