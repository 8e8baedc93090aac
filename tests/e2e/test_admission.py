"""The real apiserver refuses bad GptOssDeployments with a message naming the field.

Uses the fixtures of tests/conftest.py: `kubectl`, `namespace` (fresh per test) and `gptoss_crd`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("gptoss_crd")]

ROOT = Path(__file__).resolve().parents[2]
CUSTOM_SMALL = {"resourceName": "x.com/gpu", "gpuMemoryGiB": 24, "gpusPerNode": 1}
# (id, spec patch over a valid gpt-oss-20b spec, text the apiserver's error must contain)
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("tp-3", {"tensorParallelSize": 3}, "spec.tensorParallelSize"),
    (
        "tp-above-node",
        {"accelerator": {"profile": "L4"}, "tensorParallelSize": 2},
        "spec.tensorParallelSize",
    ),
    (
        "120b-on-l4",
        {"model": {"name": "gpt-oss-120b"}, "accelerator": {"profile": "L4"}},
        "spec.accelerator",
    ),
    (
        "120b-tp1-a100-40",
        {
            "model": {"name": "gpt-oss-120b"},
            "accelerator": {"profile": "A100-40GB"},
            "tensorParallelSize": 1,
        },
        "spec.tensorParallelSize",
    ),
    (
        "120b-custom-small",
        {"model": {"name": "gpt-oss-120b"}, "accelerator": {"custom": CUSTOM_SMALL}},
        "spec.accelerator",
    ),
    ("replicas-negative", {"replicas": -1}, "spec.replicas"),
    ("utilization", {"engine": {"gpuMemoryUtilization": 1.5}}, "spec.engine.gpuMemoryUtilization"),
    ("max-model-len", {"engine": {"maxModelLen": 200000}}, "spec.engine.maxModelLen"),
    ("unknown-field", {"bogus": 1}, "bogus"),
    ("managed-flag", {"engine": {"extraArgs": ["--port=9000"]}}, "spec.engine.extraArgs"),
    (
        "managed-flag-split",
        {"engine": {"extraArgs": ["--tensor-parallel-size", "4"]}},
        "spec.engine.extraArgs",
    ),
    (
        "managed-env",
        {"engine": {"extraEnv": [{"name": "HF_HOME", "value": "/x"}]}},
        "spec.engine.extraEnv",
    ),
    ("offline-no-cache", {"modelCache": {"offline": True}}, "spec.modelCache.offline"),
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
    ),
    ("image-latest", {"image": "vllm/vllm-openai:latest"}, "spec.image"),
    (
        "profile-and-custom",
        {"accelerator": {"profile": "H200", "custom": CUSTOM_SMALL}},
        "spec.accelerator",
    ),
]

Kubectl = Callable[..., Any]


def _manifest(namespace: str, patch: dict[str, Any]) -> str:
    obj = {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "GptOssDeployment",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"model": {"name": "gpt-oss-20b"}, **patch},
    }
    return json.dumps(obj)


@pytest.mark.parametrize(("case", "patch", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_object_is_refused(
    kubectl: Kubectl, namespace: str, case: str, patch: dict[str, Any], field: str
) -> None:
    result = kubectl("apply", "-f", "-", input=_manifest(namespace, patch), check=False)
    assert result.returncode != 0, f"{case} was accepted"
    assert field in result.stderr, result.stderr
    listed = kubectl("get", "gptossdeployments", "-n", namespace, "-o", "name")
    assert listed.stdout.strip() == ""


@pytest.mark.parametrize("example", ["gptoss-20b.yaml", "gptoss-120b.yaml"])
def test_examples_apply(kubectl: Kubectl, namespace: str, example: str) -> None:
    obj = yaml.safe_load((ROOT / "manifests" / "examples" / example).read_text())
    obj["metadata"]["namespace"] = namespace
    kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(obj))


def test_short_spec_gets_defaults(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-f", "-", input=_manifest(namespace, {}))
    got = json.loads(kubectl("get", "gptoss", "bad", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["replicas"] == 1
    assert got["spec"]["accelerator"] == {"profile": "H100-80GB"}
    assert got["spec"]["engine"]["gpuMemoryUtilization"] == 0.9


def test_explain_reads_docstring(kubectl: Kubectl) -> None:
    out = kubectl("explain", "gptossdeployment.spec.tensorParallelSize").stdout
    assert "GPUs per replica the model is split across" in out
