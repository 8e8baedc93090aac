"""Scaling through the scale subresource, rollouts on full GPU nodes, automatic rollback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.gptoss import apply, child, condition, events, get, manifest, wait_condition
from support.operator import OperatorProcess
from support.testbed import Testbed, wait_until

pytestmark = pytest.mark.testbed
HASH = "gptoss.dev/spec-hash"


def pods(testbed: Testbed, namespace: str, name: str) -> list[dict[str, Any]]:
    items = testbed.get("-n", namespace, "pods", "-l", f"app.kubernetes.io/instance={name}")
    return [p for p in items["items"] if not p["metadata"].get("deletionTimestamp")]


def test_kubectl_scale_and_an_hpa_act_on_the_resource(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    apply(testbed, namespace, manifest("elastic"))
    wait_condition(testbed, namespace, "elastic", "Ready")
    testbed.kubectl("-n", namespace, "scale", "gptossdeployment/elastic", "--replicas=3")
    wait_until(
        lambda: get(testbed, namespace, "elastic")["status"].get("readyReplicas") == 3,
        60,
        "3 ready replicas",
    )
    deployment = child(testbed, namespace, "deployment", "elastic")
    assert deployment
    assert deployment["spec"]["replicas"] == 3
    scale = json.loads(
        testbed.kubectl(
            "get",
            "--raw",
            f"/apis/gptoss.dev/v1alpha1/namespaces/{namespace}/gptossdeployments/elastic/scale",
        ).stdout
    )
    assert scale["spec"]["replicas"] == scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == get(testbed, namespace, "elastic")["status"]["selector"]

    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "elastic"},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "gptoss.dev/v1alpha1",
                "kind": "GptOssDeployment",
                "name": "elastic",
            },
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }
    testbed.apply(namespace, hpa)

    def able_to_scale() -> dict[str, Any] | None:
        status = testbed.get("-n", namespace, "hpa", "elastic").get("status", {})
        ok = any(
            c["type"] == "AbleToScale" and c["status"] == "True"
            for c in status.get("conditions", [])
        )
        return status if ok else None

    status = wait_until(able_to_scale, 60, "the HPA to read the scale subresource")
    assert status["currentReplicas"] == 3
    # The scaler, not the operator, owns the count: it stays where kubectl scale put it.
    assert get(testbed, namespace, "elastic")["spec"]["replicas"] == 3


def gpus_in_use(testbed: Testbed, nodes: list[str]) -> tuple[int, int]:
    """(GPUs requested by pods on `nodes`, GPUs the nodes have)."""
    capacity = sum(
        int(testbed.get("node", n)["status"]["allocatable"]["nvidia.com/gpu"]) for n in nodes
    )
    used = sum(
        int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
        for p in testbed.get("pods", "-A")["items"]
        if p["spec"].get("nodeName") in nodes and p["status"].get("phase") in ("Pending", "Running")
        for c in p["spec"]["containers"]
    )
    return used, capacity


def test_a_spec_change_rolls_once_on_nodes_with_no_spare_gpu(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    # A pool of two 8 x H100 servers for this test alone, and gpt-oss-120b at TP 8 with two
    # replicas on it: every GPU of the pool is taken, none is spare for a surge pod.
    pool = {"testbed.gptoss.dev/pool": namespace}
    accelerator = {
        "custom": {
            "resourceName": "nvidia.com/gpu",
            "nodeSelector": pool,
            "gpuMemoryGiB": 80,
            "gpusPerNode": 8,
        }
    }
    with testbed.extra_nodes(f"{namespace[:40]}-h100", "h100", 2, labels=pool) as nodes:
        big = manifest(
            "big",
            model={"name": "gpt-oss-120b"},
            accelerator=accelerator,
            tensorParallelSize=8,
            replicas=2,
        )
        apply(testbed, namespace, big)
        cr = wait_condition(testbed, namespace, "big", "Ready", timeout=90)
        assert gpus_in_use(testbed, nodes) == (16, 16)
        old_hash = cr["status"]["specHash"]

        big["spec"]["engine"] = {"maxNumSeqs": 64}
        apply(testbed, namespace, big)
        cr = wait_until(
            lambda: (
                (c := get(testbed, namespace, "big"))["status"].get("specHash") != old_hash
                and c["status"]["phase"] == "Ready"
                and c
            ),
            90,
            "the rollout to finish",
        )
        new_hash = cr["status"]["specHash"]
        running = pods(testbed, namespace, "big")
        assert len(running) == 2
        assert {p["metadata"]["annotations"][HASH] for p in running} == {new_hash}
        assert {p["spec"]["nodeName"] for p in running} == set(nodes)
        replicasets = testbed.get(
            "-n", namespace, "replicasets", "-l", "app.kubernetes.io/instance=big"
        )
        assert sorted(
            (rs["spec"]["template"]["metadata"]["annotations"][HASH], rs["spec"]["replicas"])
            for rs in replicasets["items"]
        ) == sorted([(old_hash, 0), (new_hash, 2)])
        assert cr["status"]["lastAvailableSpecHash"] == new_hash


def test_a_failed_rollout_is_rolled_back_while_old_pods_keep_serving(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    spec = manifest("steady", replicas=2, rollout={"progressDeadlineSeconds": 10})
    apply(testbed, namespace, spec)
    good = wait_condition(testbed, namespace, "steady", "Ready", timeout=60)
    good_hash = good["status"]["specHash"]
    assert good["status"]["lastAvailableSpecHash"] == good_hash

    spec["spec"]["podLabels"] = {"sim.gptoss.dev/behavior": "crashloop"}
    apply(testbed, namespace, spec)
    cr = wait_condition(testbed, namespace, "steady", "Degraded", reason="RolledBack", timeout=90)
    bad_hash = cr["status"]["rolledBackSpecHash"]
    assert bad_hash != good_hash
    assert cr["status"]["readyReplicas"] >= 1, "maxUnavailable 1 keeps one old pod serving"
    deployment = child(testbed, namespace, "deployment", "steady")
    assert deployment
    assert deployment["spec"]["template"]["metadata"]["annotations"][HASH] == good_hash
    assert "crashloop" not in json.dumps(deployment["spec"]["template"]["metadata"]["labels"])
    wait_until(
        lambda: get(testbed, namespace, "steady")["status"].get("readyReplicas") == 2,
        60,
        "the restored pods to be ready",
    )
    cr = get(testbed, namespace, "steady")
    assert condition(cr, "Degraded")["reason"] == "RolledBack"
    assert [e["reason"] for e in events(testbed, namespace, "steady")].count("RolledBack") == 1

    # Fixing the spec ends the rollback.
    del spec["spec"]["podLabels"]
    spec["spec"]["engine"] = {"maxNumSeqs": 128}
    apply(testbed, namespace, spec)
    cr = wait_condition(testbed, namespace, "steady", "Degraded", status="False", timeout=60)
    wait_condition(testbed, namespace, "steady", "Ready", timeout=60)
    assert "rolledBackSpecHash" not in get(testbed, namespace, "steady")["status"]
