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

from support.bad_specs import BAD as BAD_SPECS
from support.bad_specs import GOOD_EXTRA_ARGS

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("gptoss_crd")]

ROOT = Path(__file__).resolve().parents[2]
# (id, spec patch over a valid gpt-oss-20b spec, field the apiserver's error must name)
BAD = [(case, patch, field) for case, patch, field, _ in BAD_SPECS]

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


def test_scaling_a_single_node_claim_is_refused(kubectl: Kubectl, namespace: str) -> None:
    """The scale subresource (kubectl scale, HPA) goes through the same CEL rules."""
    kubectl("apply", "-f", "-", input=_manifest(namespace, {"modelCache": {"size": "100Gi"}}))
    result = kubectl("scale", "-n", namespace, "gptossdeployment/bad", "--replicas=2", check=False)
    assert result.returncode != 0, "scaled a ReadWriteOnce claim to two replicas"
    assert "spec.modelCache.accessModes" in result.stderr, result.stderr
    got = json.loads(kubectl("get", "gptoss", "bad", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["replicas"] == 1


@pytest.mark.parametrize("args", GOOD_EXTRA_ARGS, ids=[a[0] for a in GOOD_EXTRA_ARGS])
def test_good_extra_args_are_admitted(kubectl: Kubectl, namespace: str, args: list[str]) -> None:
    manifest = _manifest(namespace, {"engine": {"extraArgs": args}})
    kubectl("apply", "--dry-run=server", "-f", "-", input=manifest)
