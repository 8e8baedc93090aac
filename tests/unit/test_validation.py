"""Bad specs are refused by pydantic/validate_spec and by the CRD's CEL rules, naming the field."""

from __future__ import annotations

from typing import Any

import celpy
import pytest
from matrix import matrix

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.cel import RULES_BY_PATH
from gptoss_operator.validation import SpecError, parse_spec

CUSTOM_SMALL = {"resourceName": "x.com/gpu", "gpuMemoryGiB": 24, "gpusPerNode": 1}
# (id, spec patch, field the error must name, whether a CEL rule (not the schema) refuses it)
BAD: list[tuple[str, dict[str, Any], str, bool]] = [
    ("tp-3", {"tensorParallelSize": 3}, "spec.tensorParallelSize", False),
    (
        "tp-above-node",
        {"accelerator": {"profile": "L4"}, "tensorParallelSize": 2},
        "spec.tensorParallelSize",
        True,
    ),
    (
        "120b-on-l4",
        {"model": {"name": "gpt-oss-120b"}, "accelerator": {"profile": "L4"}},
        "spec.accelerator",
        True,
    ),
    (
        "120b-tp1-a100-40",
        {
            "model": {"name": "gpt-oss-120b"},
            "accelerator": {"profile": "A100-40GB"},
            "tensorParallelSize": 1,
        },
        "spec.tensorParallelSize",
        True,
    ),
    (
        "120b-custom-small",
        {"model": {"name": "gpt-oss-120b"}, "accelerator": {"custom": CUSTOM_SMALL}},
        "spec.accelerator",
        True,
    ),
    ("replicas-negative", {"replicas": -1}, "spec.replicas", False),
    (
        "utilization",
        {"engine": {"gpuMemoryUtilization": 1.5}},
        "spec.engine.gpuMemoryUtilization",
        False,
    ),
    ("max-model-len", {"engine": {"maxModelLen": 200000}}, "spec.engine.maxModelLen", False),
    ("unknown-field", {"bogus": 1}, "spec.bogus", False),
    ("managed-flag", {"engine": {"extraArgs": ["--port=9000"]}}, "spec.engine.extraArgs", True),
    (
        "managed-flag-split",
        {"engine": {"extraArgs": ["--enable-prefix-caching", "--tensor-parallel-size", "4"]}},
        "spec.engine.extraArgs",
        True,
    ),
    (
        "managed-flag-snake",
        {"engine": {"extraArgs": ["--max_model_len=8"]}},
        "spec.engine.extraArgs",
        True,
    ),
    ("managed-short", {"engine": {"extraArgs": ["-tp", "2"]}}, "spec.engine.extraArgs", True),
    ("api-key-arg", {"engine": {"extraArgs": ["--api-key", "x"]}}, "spec.engine.extraArgs", True),
    (
        "managed-env",
        {"engine": {"extraEnv": [{"name": "HF_HOME", "value": "/x"}]}},
        "spec.engine.extraEnv",
        True,
    ),
    ("offline-no-cache", {"modelCache": {"offline": True}}, "spec.modelCache.offline", True),
    (
        "cache-both",
        {"modelCache": {"existingClaimName": "a", "size": "10Gi"}},
        "spec.modelCache",
        True,
    ),
    (
        "grace-too-short",
        {
            "shutdown": {
                "preStopSleepSeconds": 30,
                "drainSeconds": 60,
                "terminationGracePeriodSeconds": 90,
            }
        },
        "spec.shutdown.terminationGracePeriodSeconds",
        True,
    ),
    ("image-latest", {"image": "vllm/vllm-openai:latest"}, "spec.image", True),
    ("image-untagged", {"image": "vllm/vllm-openai"}, "spec.image", False),
    (
        "profile-and-custom",
        {"accelerator": {"profile": "H200", "custom": CUSTOM_SMALL}},
        "spec.accelerator",
        True,
    ),
]


def _raw(patch: dict[str, Any]) -> dict[str, Any]:
    return {"model": {"name": "gpt-oss-20b"}, **patch}


@pytest.mark.parametrize(("case", "patch", "field", "by_cel"), BAD, ids=[b[0] for b in BAD])
def test_python_validation_names_field(
    case: str, patch: dict[str, Any], field: str, by_cel: bool
) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_raw(patch))
    assert info.value.field.startswith(field), info.value
    assert field in str(info.value)


def _cel_failures(obj: dict[str, Any]) -> list[str]:
    """Messages of the CEL rules refusing `obj` (a defaulted spec), run as the apiserver does."""
    env = celpy.Environment()
    failures = []
    for path, rules in RULES_BY_PATH.items():
        node: Any = obj
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        if node is None:
            continue
        for rule in rules():
            program = env.program(env.compile(rule["rule"]))
            if not program.evaluate({"self": celpy.json_to_cel(node)}):
                failures.append(rule["message"])
    return failures


def _defaulted(raw: dict[str, Any]) -> dict[str, Any]:
    spec = GptOssDeploymentSpec.model_validate(raw)
    return spec.model_dump(by_alias=True, exclude_none=True, mode="json")


@pytest.mark.parametrize(
    ("case", "patch", "field", "by_cel"), [b for b in BAD if b[3]], ids=[b[0] for b in BAD if b[3]]
)
def test_cel_refuses_and_names_field(
    case: str, patch: dict[str, Any], field: str, by_cel: bool
) -> None:
    failures = _cel_failures(_defaulted(_raw(patch)))
    assert failures, f"no CEL rule refused {case}"
    assert any(field in message for message in failures), failures


def test_cel_accepts_whole_matrix() -> None:
    for case_id, spec in matrix():
        obj = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        assert _cel_failures(obj) == [], case_id


def test_good_examples_parse() -> None:
    parse_spec({"model": {"name": "gpt-oss-120b"}, "tensorParallelSize": 1})
    parse_spec({"model": {"name": "gpt-oss-120b"}, "accelerator": {"profile": "H200"}})
