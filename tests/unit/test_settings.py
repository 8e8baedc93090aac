"""The operator's --gpu-node-labels setting: parsed strictly, merged over GPU feature discovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gptoss_operator.catalog import DEFAULT_GPU_NODE_LABELS, GPU_PRODUCT_LABEL, PROFILES
from gptoss_operator.cli import main
from gptoss_operator.settings import parse_gpu_node_labels

GKE = {"L4": {"cloud.google.com/gke-accelerator": ["nvidia-l4"]}}


def test_empty_setting_is_gpu_feature_discovery() -> None:
    assert parse_gpu_node_labels("") == DEFAULT_GPU_NODE_LABELS
    assert all(list(v) == [GPU_PRODUCT_LABEL] for v in DEFAULT_GPU_NODE_LABELS.values())
    assert set(DEFAULT_GPU_NODE_LABELS) == set(PROFILES)


def test_given_profiles_are_replaced_others_kept() -> None:
    labels = parse_gpu_node_labels(json.dumps(GKE))
    assert labels["L4"] == {"cloud.google.com/gke-accelerator": ("nvidia-l4",)}
    assert labels["H200"] == DEFAULT_GPU_NODE_LABELS["H200"]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("{", "not JSON"),
        ("[]", "expected an object"),
        ('{"T4": {"a": ["b"]}}', "unknown profile"),
        ('{"L4": {}}', "expected {labelKey"),
        ('{"L4": {"bad key!": ["x"]}}', "not a label key"),
        ('{"L4": {"k": []}}', "non-empty list"),
        ('{"L4": {"k": ["has space"]}}', "non-empty list"),
    ],
)
def test_bad_settings_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_gpu_node_labels(text)


def test_render_command_takes_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "l4.yaml"
    doc.write_text(
        "apiVersion: gptoss.dev/v1alpha1\nkind: GptOssDeployment\nmetadata: {name: x}\n"
        "spec: {model: {name: gpt-oss-20b}, accelerator: {profile: L4}}\n"
    )
    assert main(["render", "-f", str(doc), "--gpu-node-labels", json.dumps(GKE)]) == 0
    (deployment,) = [
        d for d in yaml.safe_load_all(capsys.readouterr().out) if d["kind"] == "Deployment"
    ]
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"][0]["key"] == "cloud.google.com/gke-accelerator"
