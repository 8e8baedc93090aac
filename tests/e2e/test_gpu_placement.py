"""GPU placement on clusters that label GPU nodes their own way (issue 11, item 3).

A kwok node labelled like a GKE L4 node (`cloud.google.com/gke-accelerator: nvidia-l4`, no GPU
feature discovery labels) gets no pod from an operator with the default setting, and gets it once
the operator runs with `--gpu-node-labels` for the L4 profile (the chart's `gpuNodeLabels`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from support.gptoss import apply, manifest, wait_condition
from support.operator import OperatorProcess
from support.testbed import Testbed, wait_until

pytestmark = pytest.mark.testbed
GKE_L4 = {"L4": {"cloud.google.com/gke-accelerator": ["nvidia-l4"]}}


def _pods(testbed: Testbed, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = testbed.get("-n", namespace, "pods")["items"]
    return items


def _unschedulable(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "PodScheduled"
        and c["status"] == "False"
        and c.get("reason") == "Unschedulable"
        for c in pod.get("status", {}).get("conditions", [])
    )


@pytest.fixture
def configured(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The session's operator, restarted with the GKE labels for L4; restored afterwards."""
    default_args = operator.args
    operator.args = (*default_args, "--gpu-node-labels", json.dumps(GKE_L4))
    try:
        yield operator
    finally:
        operator.args = default_args
        operator.restart()


def test_gke_labelled_node_gets_the_pod_once_configured(
    testbed: Testbed, operator: OperatorProcess, configured: OperatorProcess, namespace: str
) -> None:
    with testbed.extra_nodes("gke-l4", "l4-gke", 1) as (node,):
        apply(testbed, namespace, manifest("gke", accelerator={"profile": "L4"}))
        # Default setting: GPU feature discovery's product label, which this node does not have.
        pending = wait_until(
            lambda: [p for p in _pods(testbed, namespace) if _unschedulable(p)],
            60,
            "the pod to be refused by the scheduler (no nvidia.com/gpu.product label)",
        )
        affinity = pending[0]["spec"]["affinity"]["nodeAffinity"]
        terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][0]["key"] == "nvidia.com/gpu.product"

        configured.restart()
        scheduled = wait_until(
            lambda: [p for p in _pods(testbed, namespace) if p["spec"].get("nodeName") == node],
            120,
            f"a pod on the GKE-labelled node {node}",
        )
        terms = scheduled[0]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms == [
            {
                "matchExpressions": [
                    {
                        "key": "cloud.google.com/gke-accelerator",
                        "operator": "In",
                        "values": ["nvidia-l4"],
                    }
                ]
            }
        ]
        wait_condition(testbed, namespace, "gke", "Ready", timeout=120)
