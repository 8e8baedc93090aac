"""The fuzz generator's variants against everything that runs without a cluster.

Every variant is either refused naming one of the fields it changed, or accepted and then
rendered, passed by the CRD's portable CEL rules, rendered by the CLI, and (contract marker)
parsed by vLLM's own parser with the managed values intact. The admission tier
(tests/e2e/test_fuzz_admission.py) sends the same variants to the real apiserver.
Replay a failure with GPTOSS_FUZZ_SEED=<the printed seed>.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel
from test_validation import _cel_failures

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.cli import main
from gptoss_operator.flags import extra_args_error
from gptoss_operator.render import render_children
from gptoss_operator.validation import SpecError, parse_spec
from gptoss_operator.vllm_flags import VALUE_KINDS
from support.fuzz import COUNT, Variant, names_field, seed, variants

SEED = seed()


@cache
def outcomes() -> list[tuple[Variant, GptOssDeploymentSpec | SpecError]]:
    return [(v, _parse(v.spec)) for v in variants(SEED)]


def _parse(raw: dict[str, Any]) -> GptOssDeploymentSpec | SpecError:
    try:
        return parse_spec(raw)
    except SpecError as exc:
        return exc


def _deployment_args(name: str, spec: GptOssDeploymentSpec) -> list[str]:
    (deployment,) = [c for c in render_children(name, "ns", spec) if c["kind"] == "Deployment"]
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_fuzz_validation_names_field_or_renders() -> None:
    start = time.monotonic()
    counts: Counter[str] = Counter()
    problems = []
    for variant, result in outcomes():
        if isinstance(result, SpecError):
            counts["refused"] += 1
            if not names_field(str(result), variant.fields):
                problems.append(f"{variant.id}: refusal does not name {variant.fields}: {result}")
            continue
        counts["accepted"] += 1
        obj = result.model_dump(by_alias=True, exclude_none=True, mode="json")
        if failures := _cel_failures(obj):
            problems.append(f"{variant.id}: accepted in Python, refused by CEL: {failures}")
        if (bad := extra_args_error(result.engine.extra_args)) is not None:
            problems.append(f"{variant.id}: accepted extraArgs the grammar refuses: {bad}")
        _deployment_args("fuzz", result)
    took = time.monotonic() - start
    print(f"\nfuzz seed {SEED}: {dict(counts)} of {COUNT} in {took:.2f}s")
    assert len(outcomes()) >= 300
    assert counts["refused"], dict(counts)
    assert counts["accepted"], dict(counts)
    assert problems == [], f"seed {SEED} (GPTOSS_FUZZ_SEED to replay):\n" + "\n".join(problems)


def _paths(node: object, prefix: str = "") -> set[str]:
    """Dotted paths of every key in a spec, list items included (without their index)."""
    if isinstance(node, list):
        return set().union(*(_paths(item, prefix) for item in node))
    if not isinstance(node, dict):
        return set()
    out = set()
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out |= {path} | _paths(value, path)
    return out


def _field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field of the spec, as camelCase dotted paths, nested models included."""
    out = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}" if prefix else str(info.alias or name)
        out.add(path)
        for arg in (info.annotation, *get_args(info.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out |= _field_paths(arg, path)
    return out


def test_fuzz_covers_every_field() -> None:
    """The generator reaches every field of the spec (over a long run of the same seed: one CI
    run of COUNT variants touches most of them, see the printed share)."""
    fields = _field_paths(GptOssDeploymentSpec)
    run = fields & set().union(*(_paths(v.spec) for v in variants(SEED)))
    print(f"\nfuzz seed {SEED}: {len(run)} of {len(fields)} spec fields changed in this run")
    # Reaching every field is a property of the generator: checked on a fixed seed, so a rare
    # field missed by one random seed cannot fail a run (the run's own seed is printed above).
    touched = set().union(*(_paths(v.spec) for v in variants(1, 5000)))
    assert fields - touched == set(), f"fields no variant changes: {sorted(fields - touched)}"


def test_fuzz_render_cli_never_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI in-process on every variant: exit 0 with manifests or 2 naming the problem."""
    codes: Counter[int] = Counter()
    for variant, result in outcomes():
        path = tmp_path / "in.yaml"
        doc = {
            "apiVersion": "gptoss.dev/v1alpha1",
            "kind": "GptOssDeployment",
            "metadata": {"name": "fuzz"},
            "spec": variant.spec,
        }
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
        code = main(["render", "-f", str(path)])
        out, err = capsys.readouterr()
        codes[code] += 1
        expected = 2 if isinstance(result, SpecError) else 0
        assert code == expected, f"seed {SEED} {variant.id}: exit {code}: {err}"
        if code == 2:
            assert err.startswith("error: "), err
            assert "spec" in err, err
        else:
            assert "kind: Deployment" in out
    print(f"\nrender CLI seed {SEED}: exit codes {dict(codes)}")


BAD_FILES = {
    "empty": "",
    "comment-only": "# nothing\n---\n",
    "scalar": "42\n",
    "string": "just text\n",
    "list": "- a\n- b\n",
    "invalid-yaml": "spec: [unclosed\n",
    "tabs": "spec:\n\tmodel: x\n",
    "no-kind": "metadata: {name: x}\nspec: {}\n",
    "metadata-scalar": "apiVersion: gptoss.dev/v1alpha1\nkind: GptOssDeployment\nmetadata: 3\n",
    "name-number": (
        "apiVersion: gptoss.dev/v1alpha1\nkind: GptOssDeployment\nmetadata: {name: 3}\nspec: {}\n"
    ),
    "spec-scalar": (
        "apiVersion: gptoss.dev/v1alpha1\nkind: GptOssDeployment\nmetadata: {name: x}\nspec: 3\n"
    ),
    "affinity-scalar": (
        "apiVersion: gptoss.dev/v1alpha1\nkind: GptOssDeployment\nmetadata: {name: x}\n"
        "spec: {model: {name: gpt-oss-20b}, scheduling: {affinity: {nodeAffinity: x}}}\n"
    ),
    "int-keys": (
        "apiVersion: gptoss.dev/v1alpha1\nkind: GptOssDeployment\nmetadata: {name: x}\n"
        "spec: {model: {name: gpt-oss-20b}, 1: 2}\n"
    ),
    "date-value": (
        "apiVersion: gptoss.dev/v1alpha1\nkind: GptOssDeployment\nmetadata: {name: x}\n"
        "spec: {model: {name: gpt-oss-20b}, api: {servedModelName: 2024-01-01}}\n"
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_render_cli_bad_file_exits_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_FILES[case])
    assert main(["render", "-f", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err


def test_render_cli_process_prints_no_traceback(tmp_path: Path) -> None:
    """The real entry point, as a user runs it, on the scalar and bad-affinity files."""
    for case in ("scalar", "affinity-scalar"):
        path = tmp_path / f"{case}.yaml"
        path.write_text(BAD_FILES[case])
        proc = subprocess.run(
            [sys.executable, "-m", "gptoss_operator", "render", "-f", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("error: "), proc.stderr


@pytest.mark.parametrize("content", [None, b"\xff\xfe\x00bad"], ids=["missing", "not-utf8"])
def test_render_cli_unreadable_file_exits_2(
    content: bytes | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.yaml"
    if content is not None:
        path.write_bytes(content)
    assert main(["render", "-f", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read {path}")


def _argparse(vllm_serve: Any, args: list[str]) -> Any:
    """vLLM's argument parser alone: the namespace, or None when it exits (refuses)."""
    try:
        return vllm_serve.parser.parse_args(["serve", *args])
    except SystemExit:
        return None


def _json_content_only(vllm_serve: Any, args: list[str]) -> bool:
    """True when `args` parse once every JSON-typed flag's value is `{}`: what refused them is
    the JSON's content, which vLLM validates against its config classes and admission cannot."""
    fixed = list(args)
    for i, arg in enumerate(fixed):
        name, eq, _ = arg.partition("=")
        if VALUE_KINDS.get(name, "").startswith(("json", "object")):
            if eq:
                fixed[i] = f"{name}={{}}"
            elif i + 1 < len(fixed):
                fixed[i + 1] = "{}"
    return _argparse(vllm_serve, fixed) is not None


@pytest.mark.contract
def test_fuzz_accepted_command_lines_parse_with_vllm(vllm_serve: Any) -> None:
    """Every accepted variant's command line parses with vLLM's parser, which reads the managed
    values; counts what vLLM leaves to its later checks (JSON config content, cross-flag rules
    and files in validate_parsed_serve_args), which fail at start and show in the pod's status."""
    start = time.monotonic()
    counts: Counter[str] = Counter()
    problems = []
    for variant, result in outcomes():
        if isinstance(result, SpecError):
            continue
        args = _deployment_args("fuzz", result)
        where = f"seed {SEED} {variant.id}: {args}"
        ns = _argparse(vllm_serve, args)
        if ns is None:
            if _json_content_only(vllm_serve, args):
                counts["json-content-refused-at-start"] += 1
            else:
                problems.append(f"vLLM's parser refused {where}")
            continue
        assert ns.tensor_parallel_size == int(args[args.index("--tensor-parallel-size") + 1]), where
        assert ns.port == 8000, where
        assert ns.host == "0.0.0.0", where  # noqa: S104
        expected_name = result.api.served_model_name or f"openai/{result.model.name}"
        assert ns.served_model_name == [expected_name], where
        assert ns.model_tag == (result.model.repository or f"openai/{result.model.name}"), where
        try:
            vllm_serve.validate(ns)
        except Exception as exc:  # whatever vLLM's pre-start checks raise
            # Checks of values against the machine (a chat template file that is not in this
            # checkout) or against each other: vLLM refuses at start, the status reports it.
            counts["refused-by-pre-start-checks"] += 1
            print(f"  {variant.id}: {exc}")
            continue
        counts["parsed"] += 1
    took = time.monotonic() - start
    print(f"\nvLLM on accepted fuzz command lines, seed {SEED}: {dict(counts)} in {took:.1f}s")
    assert problems == [], "\n".join(problems)
    assert counts["parsed"]
