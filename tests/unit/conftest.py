"""Fixtures of the unit tier: vLLM's own `vllm serve` parser for the contract tests."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from typing import Any

import pytest

from gptoss_operator.catalog import VLLM_VERSION

Parse = Callable[[list[str]], Any]


@pytest.fixture(scope="session")
def vllm_serve() -> Parse:
    """Parse `vllm serve ARGS` as the CLI does, then run its pre-start argument checks."""
    # Lets vLLM import on a machine without GPUs; must be set before the first vllm import.
    os.environ["VLLM_TARGET_DEVICE"] = "cpu"
    try:
        version = importlib.metadata.version("vllm")
        from vllm.entrypoints.cli.serve import ServeSubcommand
        from vllm.entrypoints.common.cli_args import validate_parsed_serve_args
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.fail(f"vLLM is not installed ({exc}): run `make .venv/.vllm` (the vllm extra)")
    assert version == VLLM_VERSION, f"installed vLLM {version}, catalog pins {VLLM_VERSION}"
    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(dest="subparser", required=False)
    serve = ServeSubcommand().subparser_init(subparsers)
    known = set(serve._option_string_actions)

    def parse(args: list[str]) -> Any:
        try:
            namespace = parser.parse_args(["serve", *args])
        except SystemExit as exc:
            pytest.fail(f"vllm serve rejected {args}: exit {exc.code}")
        validate_parsed_serve_args(namespace)
        return namespace

    parse.known_flags = known  # type: ignore[attr-defined]
    # The two steps apart, for the fuzz test that counts what each refuses.
    parse.parser = parser  # type: ignore[attr-defined]
    parse.validate = validate_parsed_serve_args  # type: ignore[attr-defined]
    return parse
