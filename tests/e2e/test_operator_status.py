"""Status that explains itself: each simulated pod failure becomes a Degraded reason, a phase and
one Event, within seconds of the pod change."""

from __future__ import annotations

import pytest

from support.gptoss import apply, condition, events, get, manifest, wait_condition
from support.operator import OperatorProcess
from support.testbed import Testbed, wait_until

pytestmark = pytest.mark.testbed
BEHAVIOUR = "sim.gptoss.dev/behavior"


@pytest.mark.parametrize(
    ("behaviour", "reason", "says"),
    [
        ("crashloop", "CrashLoopBackOff", "keeps crashing (last exit code 1)"),
        ("oomkilled", "OOMKilled", "was OOMKilled (exit code 137)"),
        ("image-pull-error", "ImagePullBackOff", "cannot pull image vllm/vllm-openai:v"),
    ],
)
def test_pod_failures_become_degraded_reasons(
    testbed: Testbed,
    operator: OperatorProcess,
    namespace: str,
    behaviour: str,
    reason: str,
    says: str,
):
    apply(testbed, namespace, manifest("sick", podLabels={BEHAVIOUR: behaviour}))
    cr = wait_condition(testbed, namespace, "sick", "Degraded", reason=reason, timeout=30)
    assert says in condition(cr, "Degraded")["message"]
    assert condition(cr, "Ready")["status"] == "False"
    assert (cr["status"]["phase"], cr["status"]["reason"]) == ("Degraded", reason)
    warnings = [e for e in events(testbed, namespace, "sick") if e["reason"] == reason]
    assert len(warnings) == 1
    assert warnings[0]["type"] == "Warning"


def test_missing_gpus_are_reported_with_the_schedulers_words(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    # The one A100 40GB server has 8 GPUs: the ninth replica cannot be placed.
    apply(testbed, namespace, manifest("crowded", accelerator={"profile": "A100-40GB"}, replicas=9))
    cr = wait_condition(testbed, namespace, "crowded", "Degraded", reason="Unschedulable")
    message = condition(cr, "Degraded")["message"]
    assert "Insufficient nvidia.com/gpu" in message
    assert "0/" in message  # "0/N nodes are available: ..."
    cr = wait_until(
        lambda: (c := get(testbed, namespace, "crowded"))["status"]["ready"] == "8/9" and c,
        60,
        "the eight replicas that fit to be ready",
    )
    assert condition(cr, "Ready")["status"] == "False"
    assert condition(cr, "Degraded")["reason"] == "Unschedulable"


def test_a_startup_that_never_passes_is_reported_after_the_progress_deadline(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    apply(
        testbed,
        namespace,
        manifest(
            "loading", podLabels={BEHAVIOUR: "never-ready"}, rollout={"progressDeadlineSeconds": 10}
        ),
    )
    cr = wait_condition(testbed, namespace, "loading", "Progressing", reason="Starting")
    assert condition(cr, "Degraded")["status"] == "False"
    cr = wait_condition(
        testbed, namespace, "loading", "Degraded", reason="StartupProbeFailed", timeout=60
    )
    assert "progress deadline" in condition(cr, "Degraded")["message"]
    assert cr["status"]["phase"] == "Degraded"


def test_pods_refused_by_admission_are_reported(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    # vLLM's image runs as root: a namespace enforcing PodSecurity "restricted" refuses its pods,
    # so there is no pod to diagnose, only the ReplicaSet's failure to create one.
    testbed.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    apply(testbed, namespace, manifest("refused"))
    cr = wait_condition(testbed, namespace, "refused", "Degraded", reason="FailedCreate")
    assert "violates PodSecurity" in condition(cr, "Degraded")["message"]
    assert cr["status"]["ready"] == "0/1"
