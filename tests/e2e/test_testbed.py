"""The test bed itself: a real control plane whose scheduler, controllers and admission behave
like a cluster's, with kwok-simulated GPU nodes. Every later e2e test relies on these facts."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from support.testbed import TESTBED_SCRIPTS, Testbed, wait_until

pytestmark = pytest.mark.testbed

H100 = "NVIDIA-H100-80GB-HBM3"
VERSIONS = TESTBED_SCRIPTS / "versions.env"


def gpu_pod(
    name: str,
    gpus: int,
    labels: dict[str, str] | None = None,
    node_selector: dict[str, str] | None = None,
) -> str:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {},
                }
            ],
            "nodeSelector": node_selector or {},
        },
    }
    return json.dumps(pod)


def pod(testbed: Testbed, ns: str, name: str) -> dict[str, Any]:
    return testbed.get("-n", ns, "pod", name)  # type: ignore[no-any-return]


def scheduling_failure(testbed: Testbed, ns: str, name: str) -> str | None:
    events = testbed.get("-n", ns, "events", f"--field-selector=involvedObject.name={name}")
    messages = [e["message"] for e in events["items"] if e["reason"] == "FailedScheduling"]
    return messages[-1] if messages else None


def container_status(testbed: Testbed, ns: str, name: str) -> dict[str, Any] | None:
    statuses = pod(testbed, ns, name).get("status", {}).get("containerStatuses") or []
    return statuses[0] if statuses else None


def test_pod_asking_for_more_gpus_than_any_node_stays_pending(testbed: Testbed, namespace: str):
    testbed.apply(namespace, gpu_pod("greedy", 16))
    message = wait_until(
        lambda: scheduling_failure(testbed, namespace, "greedy"), 60, "a FailedScheduling event"
    )
    assert "Insufficient nvidia.com/gpu" in message
    assert pod(testbed, namespace, "greedy")["status"]["phase"] == "Pending"


def test_eight_gpus_land_on_a_full_gpu_server_never_on_a_small_one(
    testbed: Testbed, namespace: str
):
    testbed.apply(namespace, gpu_pod("eight", 8))
    node = wait_until(
        lambda: pod(testbed, namespace, "eight")["spec"].get("nodeName"),
        60,
        "the pod to be scheduled",
    )
    labels = testbed.get("node", node)["metadata"]["labels"]
    assert labels["nvidia.com/gpu.count"] == "8"


def test_gpu_product_node_selector_is_honoured(testbed: Testbed, namespace: str):
    selector = {"nvidia.com/gpu.product": H100}
    testbed.apply(namespace, gpu_pod("on-h100", 8, node_selector=selector))
    node = wait_until(
        lambda: pod(testbed, namespace, "on-h100")["spec"].get("nodeName"),
        60,
        "the pod to be scheduled",
    )
    assert testbed.get("node", node)["metadata"]["labels"]["nvidia.com/gpu.product"] == H100
    # The L40S server has only 4 GPUs: 8 with that selector can never fit.
    selector = {"nvidia.com/gpu.product": "NVIDIA-L40S"}
    testbed.apply(namespace, gpu_pod("on-l40s", 8, node_selector=selector))
    message = wait_until(
        lambda: scheduling_failure(testbed, namespace, "on-l40s"), 60, "a FailedScheduling event"
    )
    assert "Insufficient nvidia.com/gpu" in message


def test_deployment_pods_become_ready(testbed: Testbed, namespace: str):
    testbed.kubectl(
        "-n",
        namespace,
        "create",
        "deployment",
        "web",
        "--image=registry.k8s.io/pause:3.10",
        "--replicas=3",
    )
    testbed.kubectl("-n", namespace, "rollout", "status", "deployment/web", "--timeout=60s")
    pods = testbed.get("-n", namespace, "pods", "-l", "app=web")["items"]
    assert len(pods) == 3
    assert all(
        c["status"] == "True"
        for p in pods
        for c in p["status"]["conditions"]
        if c["type"] == "Ready"
    )


def test_ready_after_annotation_delays_readiness(testbed: Testbed, namespace: str):
    manifest = json.loads(gpu_pod("slow", 0))
    manifest["metadata"]["annotations"] = {"sim.gptoss.dev/ready-after": "4s"}
    testbed.apply(namespace, manifest)
    wait_until(lambda: pod(testbed, namespace, "slow")["spec"].get("nodeName"), 30, "scheduling")
    bound = pod(testbed, namespace, "slow")
    assert bound["status"]["phase"] == "Pending", "ready before its delay"
    wait_until(
        lambda: pod(testbed, namespace, "slow")["status"]["phase"] == "Running", 30, "Running"
    )
    ready = pod(testbed, namespace, "slow")["status"]["conditions"]
    assert {"type": "Ready", "status": "True"}.items() <= next(
        c for c in ready if c["type"] == "Ready"
    ).items()


def test_never_ready_runs_without_becoming_ready(testbed: Testbed, namespace: str):
    testbed.apply(namespace, gpu_pod("stuck", 1, labels={"sim.gptoss.dev/behavior": "never-ready"}))
    status = wait_until(
        lambda: container_status(testbed, namespace, "stuck"), 30, "container status"
    )
    assert status["ready"] is False
    assert status["started"] is False
    assert "running" in status["state"]
    events = testbed.get("-n", namespace, "events", "--field-selector=involvedObject.name=stuck")[
        "items"
    ]
    assert any(
        e["reason"] == "Unhealthy" and "Startup probe failed" in e["message"] for e in events
    )


def test_crashloop_grows_the_restart_count(testbed: Testbed, namespace: str):
    testbed.apply(namespace, gpu_pod("crash", 1, labels={"sim.gptoss.dev/behavior": "crashloop"}))
    status = wait_until(
        lambda: container_status(testbed, namespace, "crash"), 30, "container status"
    )
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["exitCode"] == 1
    wait_until(
        lambda: (container_status(testbed, namespace, "crash") or {}).get("restartCount", 0) >= 2,
        60,
        "a second restart",
    )


def test_oomkilled_reports_the_oom_then_crash_loops(testbed: Testbed, namespace: str):
    testbed.apply(namespace, gpu_pod("oom", 1, labels={"sim.gptoss.dev/behavior": "oomkilled"}))
    status = wait_until(lambda: container_status(testbed, namespace, "oom"), 30, "container status")
    assert status["state"]["terminated"]["reason"] == "OOMKilled"
    assert status["state"]["terminated"]["exitCode"] == 137
    status = wait_until(
        lambda: (s := container_status(testbed, namespace, "oom")) and s["restartCount"] >= 1 and s,
        60,
        "the restart after the OOM",
    )
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"


def test_image_pull_error_backs_off(testbed: Testbed, namespace: str):
    testbed.apply(
        namespace, gpu_pod("nopull", 1, labels={"sim.gptoss.dev/behavior": "image-pull-error"})
    )
    wait_until(
        lambda: (
            (container_status(testbed, namespace, "nopull") or {})
            .get("state", {})
            .get("waiting", {})
            .get("reason")
            == "ImagePullBackOff"
        ),
        30,
        "ImagePullBackOff",
    )
    assert pod(testbed, namespace, "nopull")["status"]["phase"] == "Pending"


def test_missing_secret_waits_in_create_container_config_error(testbed: Testbed, namespace: str):
    spec = json.loads(gpu_pod("nosecret", 1, labels={"sim.gptoss.dev/behavior": "missing-secret"}))
    spec["spec"]["containers"][0]["env"] = [
        {"name": "PLAIN", "value": "x"},
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "token"}}},
    ]
    testbed.apply(namespace, spec)
    waiting = wait_until(
        lambda: (
            (container_status(testbed, namespace, "nosecret") or {}).get("state", {}).get("waiting")
        ),
        30,
        "the container to wait",
    )
    assert waiting == {
        "reason": "CreateContainerConfigError",
        "message": 'secret "absent" not found',
    }
    assert pod(testbed, namespace, "nosecret")["status"]["phase"] == "Pending"


def download_job(name: str, labels: dict[str, str], annotations: dict[str, str]) -> str:
    """An Indexed Job shaped like the operator's download Job, without the operator."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": 2,
            "parallelism": 1,
            "backoffLimit": 3,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": "download",
                            "operator": "In",
                            "values": [10],
                        },
                    }
                ]
            },
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/component": "model-download", **labels},
                    "annotations": annotations,
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "download", "image": "registry.k8s.io/pause:3.10"}],
                },
            },
        },
    }
    return json.dumps(job)


def job_condition(testbed: Testbed, ns: str, name: str) -> dict[str, Any] | None:
    conditions = testbed.get("-n", ns, "job", name).get("status", {}).get("conditions") or []
    done = [c for c in conditions if c["type"] in ("Complete", "Failed") and c["status"] == "True"]
    return done[0] if done else None


def test_download_pods_succeed_after_their_delay_index_by_index(testbed: Testbed, namespace: str):
    testbed.apply(namespace, download_job("dl", {}, {"sim.gptoss.dev/download-after": "2s"}))
    done = wait_until(lambda: job_condition(testbed, namespace, "dl"), 30, "the Job to end")
    assert done["type"] == "Complete"
    status = testbed.get("-n", namespace, "job", "dl")["status"]
    assert status["succeeded"] == 2
    assert status["completedIndexes"] == "0,1"
    took = (
        datetime.datetime.fromisoformat(status["completionTime"])
        - datetime.datetime.fromisoformat(status["startTime"])
    ).total_seconds()
    assert took >= 4  # two parts, one at a time, 2 s each


def test_failing_download_pod_reports_its_exit_code_and_message(testbed: Testbed, namespace: str):
    testbed.apply(
        namespace,
        download_job(
            "gated",
            {"sim.gptoss.dev/download": "fail"},
            {
                "sim.gptoss.dev/download-exit-code": "10",
                "sim.gptoss.dev/download-message": "repository is gated",
            },
        ),
    )
    done = wait_until(lambda: job_condition(testbed, namespace, "gated"), 30, "the Job to end")
    assert (done["type"], done["reason"]) == ("Failed", "PodFailurePolicy")
    (failed,) = testbed.get("-n", namespace, "pods", "-l", "job-name=gated")["items"]
    assert failed["status"]["phase"] == "Failed"
    terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["message"]) == (10, "repository is gated")


def test_deleting_an_owner_garbage_collects_what_it_owns(testbed: Testbed, namespace: str):
    testbed.kubectl("-n", namespace, "create", "configmap", "owner")
    uid = testbed.get("-n", namespace, "configmap", "owner")["metadata"]["uid"]
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
            ],
        },
    }
    testbed.apply(namespace, owned)
    testbed.kubectl("-n", namespace, "delete", "configmap", "owner")
    wait_until(
        lambda: (
            testbed.kubectl("-n", namespace, "get", "configmap", "owned", check=False).returncode
            != 0
        ),
        60,
        "the garbage collector to delete the owned ConfigMap",
    )


def test_restricted_pod_security_rejects_a_privileged_pod(testbed: Testbed, namespace: str):
    testbed.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    manifest = json.loads(gpu_pod("priv", 0))
    manifest["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    result = testbed.apply(namespace, manifest, check=False)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr
    assert "privileged" in result.stderr


CEL_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.testbed.gptoss.dev"},
    "spec": {
        "group": "testbed.gptoss.dev",
        "names": {"kind": "Widget", "plural": "widgets"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "min": {"type": "integer"},
                                    "max": {"type": "integer"},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.min <= self.max",
                                        "message": "min must not exceed max",
                                    }
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_cel_rule_rejects_a_breaking_object_with_its_message(testbed: Testbed, namespace: str):
    testbed.kubectl("apply", "-f", "-", input=json.dumps(CEL_CRD))
    testbed.kubectl("wait", "--for=condition=Established", "crd/widgets.testbed.gptoss.dev")
    widget = {
        "apiVersion": "testbed.gptoss.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"min": 5, "max": 1},
    }
    result = testbed.apply(namespace, widget, check=False)
    assert result.returncode != 0
    assert "min must not exceed max" in result.stderr
    widget["spec"] = {"min": 1, "max": 5}
    testbed.apply(namespace, widget)


def test_nodes_can_be_added_and_removed(testbed: Testbed):
    testbed.add_node("extra-l40s", "l40s")
    node = testbed.get("node", "extra-l40s")
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    testbed.remove_node("extra-l40s")
    assert testbed.kubectl("get", "node", "extra-l40s", check=False).returncode != 0


def test_audit_log_records_each_write(testbed: Testbed, namespace: str):
    mark = testbed.audit_mark()
    testbed.kubectl("-n", namespace, "create", "configmap", "counted")
    writes = [
        e
        for e in testbed.audit_writes(since=mark, user="testbed-admin")
        if e["objectRef"].get("name") == "counted"
    ]
    assert [(e["verb"], e["objectRef"]["resource"]) for e in writes] == [("create", "configmaps")]


def test_tools_report_the_pinned_versions(testbed: Testbed):
    pins = dict(
        line.split("=", 1)
        for line in VERSIONS.read_text().splitlines()
        if line and not line.startswith("#")
    )
    client = json.loads(testbed.kubectl("version", "-o", "json").stdout)
    assert client["clientVersion"]["gitVersion"] == pins["K8S_VERSION"]
    assert client["serverVersion"]["gitVersion"] == pins["K8S_VERSION"]
    helm = testbed.helm("version", "--template", "{{ .Version }}").stdout.strip()
    assert helm == pins["HELM_VERSION"]
    # Helm renders .Capabilities from the live apiserver, so it must see the stamped version.
    node_versions = {
        n["status"]["nodeInfo"]["kubeletVersion"] for n in testbed.get("nodes")["items"]
    }
    assert node_versions == {pins["K8S_VERSION"]}


def test_claims_of_the_default_class_are_bound(testbed: Testbed, namespace: str):
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "cache"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "80Gi"}}},
    }
    testbed.apply(namespace, claim)
    wait_until(
        lambda: (
            testbed.get("-n", namespace, "pvc", "cache").get("status", {}).get("phase") == "Bound"
        ),
        30,
        "the claim to be bound",
    )
