"""The operator keeps each GptOssDeployment's children true to its spec, on the real control plane:
server-side apply, owner references, drift correction, garbage collection, bad specs."""

from __future__ import annotations

import json
import time
from urllib.parse import unquote

import pytest

from support.gptoss import apply, child, condition, events, get, manifest, wait_condition
from support.operator import OperatorProcess
from support.testbed import Testbed, describe_write, wait_until

pytestmark = pytest.mark.testbed
OPERATOR_USER = "gptoss-operator"


def test_apply_creates_owned_children_and_reaches_ready(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    started = time.monotonic()
    apply(testbed, namespace, manifest("chat", replicas=2))
    wait_until(lambda: child(testbed, namespace, "deployment", "chat"), 30, "the Deployment")
    to_deployment = time.monotonic() - started
    testbed.kubectl(
        "-n", namespace, "wait", "--for=condition=Ready", "gptossdeployment/chat", "--timeout=60s"
    )
    to_ready = time.monotonic() - started
    print(f"\napply -> Deployment {to_deployment:.2f}s, apply -> Ready {to_ready:.2f}s")

    cr = get(testbed, namespace, "chat")
    status = cr["status"]
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == cr["metadata"]["generation"]
    assert status["ready"] == "2/2"
    assert status["replicas"] == status["readyReplicas"] == 2
    assert status["endpoint"] == f"http://chat.{namespace}.svc.cluster.local:8000/v1"
    assert (status["tensorParallelSize"], status["gpusPerReplica"]) == (1, 1)
    assert status["image"].startswith("vllm/vllm-openai:v")
    assert status["selector"] == "app.kubernetes.io/instance=chat,app.kubernetes.io/name=gpt-oss"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
    }
    assert not cr["metadata"].get("finalizers"), "a finalizer would block deletes while down"

    for kind in ("deployment", "service", "poddisruptionbudget"):
        obj = child(testbed, namespace, kind, "chat")
        assert obj, f"no {kind}"
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "GptOssDeployment",
            cr["metadata"]["uid"],
            True,
        )
        managers = {
            m["manager"] for m in obj["metadata"]["managedFields"] if m["operation"] == "Apply"
        }
        assert managers == {"gptoss-operator"}
    deployment = child(testbed, namespace, "deployment", "chat")
    assert deployment
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    # A new resource coming up is no news: its conditions say it, and each Event is a write.
    assert [e["reason"] for e in events(testbed, namespace, "chat")] == []


def test_deleted_children_come_back(testbed: Testbed, operator: OperatorProcess, namespace: str):
    apply(testbed, namespace, manifest("drift"))
    wait_condition(testbed, namespace, "drift", "Ready")
    for kind in ("deployment", "service"):
        before = child(testbed, namespace, kind, "drift")
        assert before
        testbed.kubectl("-n", namespace, "delete", kind, "drift", "--wait=true")
        wait_until(
            lambda k=kind, b=before: (
                (c := child(testbed, namespace, k, "drift"))
                and c["metadata"]["uid"] != b["metadata"]["uid"]
            ),
            30,
            f"the {kind} to come back",
        )
    wait_condition(testbed, namespace, "drift", "Ready")


def test_hand_edits_of_owned_fields_are_reverted_and_foreign_fields_kept(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    apply(testbed, namespace, manifest("edited"))
    wait_condition(testbed, namespace, "edited", "Ready")
    owned = child(testbed, namespace, "deployment", "edited")
    assert owned
    deadline = owned["spec"]["progressDeadlineSeconds"]
    testbed.kubectl(
        "-n",
        namespace,
        "patch",
        "deployment",
        "edited",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"progressDeadlineSeconds": deadline + 1}}),
    )
    testbed.kubectl(
        "-n", namespace, "annotate", "deployment", "edited", "team.example.com/owner=ml"
    )
    wait_until(
        lambda: (
            (child(testbed, namespace, "deployment", "edited") or {})
            .get("spec", {})
            .get("progressDeadlineSeconds")
            == deadline
        ),
        30,
        "the operator to revert the hand edit",
    )
    kept = child(testbed, namespace, "deployment", "edited")
    assert kept
    assert kept["metadata"]["annotations"]["team.example.com/owner"] == "ml"


def test_deleting_the_resource_garbage_collects_its_children(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    apply(testbed, namespace, manifest("gone", modelCache={"size": "40Gi"}))
    wait_condition(testbed, namespace, "gone", "Ready")
    assert child(testbed, namespace, "pvc", "gone-model-cache")
    testbed.kubectl("-n", namespace, "delete", "gptossdeployment", "gone", "--timeout=30s")
    for kind, name in (("deployment", "gone"), ("service", "gone"), ("pvc", "gone-model-cache")):
        wait_until(
            lambda k=kind, n=name: child(testbed, namespace, k, n) is None,
            60,
            f"garbage collection of {kind}/{name}",
        )


def test_a_stopped_operator_never_blocks_a_delete(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    apply(testbed, namespace, manifest("orphan"))
    wait_condition(testbed, namespace, "orphan", "Ready")
    operator.stop()
    try:
        testbed.kubectl("-n", namespace, "delete", "gptossdeployment", "orphan", "--timeout=20s")
        wait_until(
            lambda: child(testbed, namespace, "deployment", "orphan") is None,
            60,
            "garbage collection while the operator is down",
        )
    finally:
        operator.start()


def test_a_spec_the_operator_cannot_serve_is_reported_not_retried_and_changes_nothing(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    apply(testbed, namespace, manifest("tuned"))
    wait_condition(testbed, namespace, "tuned", "Ready")
    before = child(testbed, namespace, "deployment", "tuned")
    assert before
    # Passes the CRD's schema and rules, fails the operator's deeper check: a rollout that may
    # neither add nor remove a pod could never make progress.
    mark = testbed.audit_mark()
    apply(testbed, namespace, manifest("tuned", rollout={"maxSurge": 0, "maxUnavailable": "0%"}))
    cr = wait_condition(testbed, namespace, "tuned", "Degraded", reason="InvalidSpec")
    assert "spec.rollout.maxUnavailable" in condition(cr, "Degraded")["message"]
    assert cr["status"]["phase"] == "Failed"
    # What runs is still described, so the scale subresource and an HPA keep working.
    assert (
        cr["status"]["selector"]
        == "app.kubernetes.io/instance=tuned,app.kubernetes.io/name=gpt-oss"
    )
    assert cr["status"]["readyReplicas"] == 1
    invalid = [e for e in events(testbed, namespace, "tuned") if e["reason"] == "InvalidSpec"]
    assert len(invalid) == 1
    assert "spec.rollout.maxUnavailable" in invalid[0]["message"]
    # Give a hot loop time to show itself, then count what the operator wrote.
    time.sleep(5)
    writes = testbed.audit_writes(since=mark, user=OPERATOR_USER)
    touched = [
        describe_write(e)
        for e in writes
        if e["objectRef"].get("namespace") == namespace and e["objectRef"]["resource"] != "events"
    ]
    assert all("gptossdeployments/status" in w for w in touched), touched
    assert len(touched) <= 2, touched
    after = child(testbed, namespace, "deployment", "tuned")
    assert after
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


def test_the_operator_lists_only_its_own_children_and_pods(
    testbed: Testbed, operator: OperatorProcess
):
    # Server-side label selectors: the cluster's other pods never reach the operator.
    # From the start of the log: the operator listed each kind when it started.
    lists = [e for e in testbed.audit_events(since=0, user=OPERATOR_USER) if e["verb"] == "list"]
    by_resource = {e["objectRef"]["resource"]: unquote(e["requestURI"]) for e in lists}
    selector = (
        "labelSelector=app.kubernetes.io/managed-by=gptoss-operator,app.kubernetes.io/instance"
    )
    # ConfigMaps above all: every namespace holds some (kube-root-ca.crt), only ours are watched.
    for resource in ("pods", "replicasets", "deployments", "services", "configmaps"):
        assert selector in by_resource[resource], by_resource[resource]
    assert "labelSelector" not in by_resource["gptossdeployments"]
