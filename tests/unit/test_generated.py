"""Generated files must match their sources: CRD, docs and the golden renderings of the examples.

Regenerate the CRD and docs with `make generate`, the golden files with
`GPTOSS_UPDATE_GOLDEN=1 python -m pytest tests/unit/test_generated.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from gptoss_operator.cli import main
from gptoss_operator.crd import crd, crd_yaml
from gptoss_operator.docs import api_reference_md, defaults_md

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))


def test_crd_matches_committed_file() -> None:
    committed = (ROOT / "manifests" / "crds" / "gptossdeployments.yaml").read_text()
    assert committed == crd_yaml(), "CRD drifted from the models: run `make generate`"


@pytest.mark.parametrize(
    ("name", "render"), [("defaults.md", defaults_md), ("api-reference.md", api_reference_md)]
)
def test_docs_match_committed_files(name: str, render: object) -> None:
    assert callable(render)
    assert (ROOT / "docs" / name).read_text() == render(), f"docs/{name} drifted: `make generate`"


def _walk(node: object) -> list[dict[str, object]]:
    out = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out += _walk(value)
    elif isinstance(node, list):
        for value in node:
            out += _walk(value)
    return out


def test_crd_schema_is_structural() -> None:
    version = crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for node in _walk(schema["properties"]["spec"]) + _walk(schema["properties"]["status"]):
        assert not {"$ref", "$defs", "anyOf", "allOf", "title", "nullable"} & set(node)
        assert node.get("default", 0) is not None
        if "properties" in node:
            assert node.get("type") == "object"
            assert "additionalProperties" not in node
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == [
        "Model", "Accelerator", "TP", "Ready", "Phase", "Reason", "Weights", "Age",
        "Endpoint", "ETA",
    ]  # fmt: skip
    assert columns["Endpoint"]["priority"] == 1
    described = _walk(schema["properties"]["spec"])
    for node in described:
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"spec field {name} has no description"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_golden(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(example)]) == 0
    rendered = capsys.readouterr().out
    golden = GOLDEN / example.name
    if os.environ.get("GPTOSS_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert golden.read_text() == rendered, "set GPTOSS_UPDATE_GOLDEN=1 to accept the new output"
    kinds = [doc["kind"] for doc in yaml.safe_load_all(rendered)]
    assert "Deployment" in kinds
    assert "Service" in kinds


def test_render_bad_file_names_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: gptoss.dev/v1alpha1\nkind: GptOssDeployment\nmetadata: {name: x}\n"
        "spec: {model: {name: gpt-oss-120b}, accelerator: {profile: A100-40GB}, "
        "tensorParallelSize: 1}\n"
    )
    assert main(["render", "-f", str(bad)]) == 2
    assert "spec.tensorParallelSize" in capsys.readouterr().err


def test_crd_command_prints_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == crd_yaml()
