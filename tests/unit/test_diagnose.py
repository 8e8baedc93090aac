"""Diagnosis is pure: pods and children in, reasons and conditions out."""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_operator.diagnose import (
    Facts,
    Observation,
    Problem,
    SecretUse,
    build_status,
    merge_conditions,
    pod_problem,
    transitions,
)

FACTS = Facts(
    replicas=2,
    spec_hash="abc",
    selector="app=x",
    endpoint="http://x.ns.svc:8000/v1",
    tensor_parallel_size=2,
    gpus_per_replica=2,
    image="vllm/vllm-openai:v0.33.0",
)
NOW = "2026-11-25T00:00:00Z"


def pod(
    name: str = "p",
    state: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    started: bool = True,
    conditions: list[dict[str, Any]] | None = None,
    hash_: str = "abc",
    terminating: bool = False,
) -> dict[str, Any]:
    """A pod of the template `hash_`; ready when running and started, as the kubelet says."""
    running = "running" in (state or {"running": {}})
    ready = {"type": "Ready", "status": "True" if running and started else "False"}
    container = {
        "name": "vllm",
        "image": "img:1",
        "started": started,
        "state": state or {"running": {}},
        "lastState": last or {},
    }
    meta: dict[str, Any] = {"name": name, "annotations": {"gptoss.dev/spec-hash": hash_}}
    if terminating:
        meta["deletionTimestamp"] = NOW
    return {
        "metadata": meta,
        "status": {"containerStatuses": [container], "conditions": [*(conditions or []), ready]},
    }


def deployment(
    ready: int,
    updated: int = 2,
    replicas: int = 2,
    hash_: str = "abc",
    progressing: str = "NewReplicaSetAvailable",
) -> dict[str, Any]:
    return {
        "metadata": {"generation": 3},
        "spec": {"template": {"metadata": {"annotations": {"gptoss.dev/spec-hash": hash_}}}},
        "status": {
            "observedGeneration": 3,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "availableReplicas": ready,
            "conditions": [{"type": "Progressing", "reason": progressing}],
        },
    }


@pytest.mark.parametrize(
    ("the_pod", "reason"),
    [
        (
            pod(
                state={"waiting": {"reason": "CrashLoopBackOff"}},
                last={"terminated": {"exitCode": 1, "reason": "Error"}},
            ),
            "CrashLoopBackOff",
        ),
        (pod(state={"terminated": {"exitCode": 137, "reason": "OOMKilled"}}), "OOMKilled"),
        (
            pod(
                state={"waiting": {"reason": "CrashLoopBackOff"}},
                last={"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
            ),
            "OOMKilled",
        ),
        (
            pod(state={"waiting": {"reason": "ErrImagePull", "message": "not found"}}),
            "ImagePullBackOff",
        ),
        (pod(state={"waiting": {"reason": "ImagePullBackOff"}}), "ImagePullBackOff"),
        (
            pod(
                state={},
                conditions=[
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/5 nodes are available: 5 Insufficient nvidia.com/gpu.",
                    }
                ],
            ),
            "Unschedulable",
        ),
    ],
)
def test_pod_problems_are_named(the_pod: dict[str, Any], reason: str) -> None:
    problem = pod_problem(the_pod)
    assert problem is not None
    assert problem.reason == reason


def test_a_healthy_or_starting_pod_has_no_problem() -> None:
    assert pod_problem(pod()) is None
    assert pod_problem(pod(started=False)) is None


def test_unschedulable_keeps_the_schedulers_message() -> None:
    message = "0/5 nodes are available: 5 Insufficient nvidia.com/gpu."
    the_pod = pod(
        state={},
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    )
    problem = pod_problem(the_pod)
    assert problem is not None
    assert message in problem.message


def test_ready_and_complete() -> None:
    status = build_status(Observation(5, FACTS, deployment(ready=2), [pod(), pod("q")]), NOW)
    assert (status["phase"], status["ready"], status["lastAvailableSpecHash"]) == (
        "Ready",
        "2/2",
        "abc",
    )
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
    }
    assert all(c["observedGeneration"] == 5 for c in status["conditions"])


def test_the_most_severe_pod_problem_wins() -> None:
    crash = pod(state={"waiting": {"reason": "CrashLoopBackOff"}})
    oom = pod("q", state={"terminated": {"reason": "OOMKilled", "exitCode": 137}})
    status = build_status(Observation(1, FACTS, deployment(ready=0), [crash, oom]), NOW)
    assert (status["phase"], status["reason"]) == ("Degraded", "OOMKilled")


def test_progress_deadline_with_starting_pods_is_a_failed_startup() -> None:
    obs = Observation(
        1, FACTS, deployment(ready=0, progressing="ProgressDeadlineExceeded"), [pod(started=False)]
    )
    assert build_status(obs, NOW)["reason"] == "StartupProbeFailed"


def test_rolled_back_is_degraded_even_when_serving() -> None:
    obs = Observation(
        1,
        FACTS,
        deployment(ready=2, hash_="old"),
        [pod(), pod("q")],
        previous={"lastAvailableSpecHash": "old"},
        rolled_back_from="abc",
    )
    status = build_status(obs, NOW)
    assert (status["phase"], status["reason"], status["rolledBackSpecHash"]) == (
        "Degraded",
        "RolledBack",
        "abc",
    )
    assert status["lastAvailableSpecHash"] == "old"
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"


def test_an_invalid_spec_fails_without_facts() -> None:
    obs = Observation(2, None, None, failure=Problem("InvalidSpec", "spec.x: bad"))
    status = build_status(obs, NOW)
    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed",
        "InvalidSpec",
        "spec.x: bad",
    )
    assert "endpoint" not in status


def test_transition_times_move_only_when_a_status_flips() -> None:
    before = [
        {"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "t0"}
    ]
    same = merge_conditions(before, [{"type": "Ready", "status": "True", "reason": "Other"}], NOW)
    flipped = merge_conditions(before, [{"type": "Ready", "status": "False", "reason": "X"}], NOW)
    assert same[0]["lastTransitionTime"] == "t0"
    assert flipped[0]["lastTransitionTime"] == NOW


def test_events_only_for_news() -> None:
    ready = [{"type": "Ready", "status": "True", "reason": "Available", "message": "2/2"}]
    not_ready = [{"type": "Ready", "status": "False", "reason": "Creating", "message": "0/2"}]
    progressing = [{"type": "Progressing", "status": "True", "reason": "Creating", "message": "m"}]
    assert transitions(ready, ready) == []
    # A new resource coming up is no news: no Event for its first status or its first Ready.
    assert transitions([], [*not_ready, *progressing]) == []
    assert transitions(not_ready, ready, served_before=False) == []
    # Readiness regained after serving before, lost, a problem, a recovery: news.
    assert transitions(not_ready, ready, served_before=True) == [("Normal", "Ready", "2/2")]
    assert transitions(ready, not_ready) == [("Warning", "NotReady", "0/2")]
    degraded = [{"type": "Degraded", "status": "True", "reason": "OOMKilled", "message": "m"}]
    assert transitions([], degraded) == [("Warning", "OOMKilled", "m")]
    healed = [{"type": "Degraded", "status": "False", "reason": "AsExpected", "message": ""}]
    assert transitions(degraded, healed) == [("Normal", "Recovered", "no problems found")]
    rollout = [{"type": "Progressing", "status": "True", "reason": "RollingOut", "message": "r"}]
    done = [{"type": "Progressing", "status": "False", "reason": "Complete", "message": "c"}]
    assert transitions(done, rollout) == [("Normal", "RollingOut", "r")]


def test_ready_as_soon_as_the_pods_are_before_the_deployment_status_says_so() -> None:
    lagging = deployment(ready=0)  # kube-controller-manager has not counted the pods yet
    status = build_status(Observation(3, FACTS, lagging, [pod(), pod("q")]), NOW)
    assert (status["phase"], status["ready"], status["readyReplicas"]) == ("Ready", "2/2", 2)


def test_not_complete_while_pods_of_the_old_template_remain() -> None:
    pods = [pod(), pod("q"), pod("old", hash_="old")]
    status = build_status(Observation(3, FACTS, deployment(ready=2), pods), NOW)
    assert (status["phase"], status["reason"]) == ("Progressing", "ScalingDown")
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"
    # Once the old pod is terminating, the rollout is complete.
    pods[2] = pod("old", hash_="old", terminating=True)
    status = build_status(Observation(3, FACTS, deployment(ready=2), pods), NOW)
    assert (status["phase"], status["replicas"], status["lastAvailableSpecHash"]) == (
        "Ready",
        2,
        "abc",
    )


def test_pods_of_the_live_template_prove_the_deployment_controller_saw_it() -> None:
    # kube-controller-manager has made and counted the pods but not yet written the Deployment's
    # observedGeneration: the pods say the rollout is done.
    lagging = deployment(ready=0)
    lagging["metadata"]["generation"] = 4
    status = build_status(Observation(4, FACTS, lagging, [pod(), pod("q")]), NOW)
    assert status["phase"] == "Ready"
    # No live pod (all terminating on a scale to zero): the Deployment's status must have seen
    # the latest generation first.
    zero = FACTS.__class__(**{**FACTS.__dict__, "replicas": 0})
    stale = deployment(ready=0, updated=0, replicas=0)
    stale["metadata"]["generation"] = 4
    going = [pod(terminating=True)]
    assert build_status(Observation(4, zero, stale, going), NOW)["phase"] == "Progressing"
    stale["status"]["observedGeneration"] = 4
    assert build_status(Observation(4, zero, stale, going), NOW)["phase"] == "Ready"


def test_pods_the_replicaset_could_not_create_are_a_problem() -> None:
    refused = deployment(ready=0)
    refused["status"]["conditions"].append(
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": 'pods "x" is forbidden: violates PodSecurity "restricted:latest"',
        }
    )
    status = build_status(Observation(1, FACTS, refused, []), NOW)
    assert (status["phase"], status["reason"]) == ("Degraded", "FailedCreate")
    assert "violates PodSecurity" in status["message"]


API_KEY = SecretUse("spec.api.apiKeySecretRef", "llm-key", "token")
HF = SecretUse("spec.modelCache.hfTokenSecretRef", "hf", "t")


def _config_error(message: str) -> dict[str, Any]:
    return pod(
        state={"waiting": {"reason": "CreateContainerConfigError", "message": message}},
        started=False,
    )


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ('secret "llm-key" not found', "Secret llm-key with key token (spec.api.apiKeySecretRef)"),
        ("couldn't find key token in Secret ns/llm-key", "Secret llm-key with key token"),
        ('secret "hf" not found', "Secret hf with key t (spec.modelCache.hfTokenSecretRef)"),
        # No kubelet message (or one naming neither): every referenced Secret is a suspect.
        ("", "Secret llm-key with key token (spec.api.apiKeySecretRef) or Secret hf"),
    ],
)
def test_missing_secret_names_the_secret_and_key(message: str, named: str) -> None:
    problem = pod_problem(_config_error(message), (API_KEY, HF))
    assert problem is not None
    assert problem.reason == "SecretMissing"
    assert named in problem.message
    assert problem.message.startswith("pod p: container vllm cannot start: ")


def test_missing_secret_makes_the_deployment_degraded_not_ready() -> None:
    facts = Facts(**{**FACTS.__dict__, "secrets": (API_KEY,)})
    status = build_status(
        Observation(
            generation=3,
            facts=facts,
            deployment=deployment(ready=0, updated=2),
            pods=[_config_error('secret "llm-key" not found')],
        ),
        NOW,
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "SecretMissing"
    assert conditions["Degraded"]["status"] == "True"
    assert "Secret llm-key with key token" in conditions["Degraded"]["message"]
    assert status["reason"] == "SecretMissing"


def test_run_as_non_root_with_a_root_image_is_explained() -> None:
    message = "container has runAsNonRoot and image will run as root (pod: p, container: vllm)"
    problem = pod_problem(_config_error(message), (API_KEY,))
    assert problem == Problem(
        "CreateContainerConfigError",
        f"pod p: container vllm cannot start: {message}; set spec.securityContext.runAsUser to "
        "a non-root UID, or use an image whose USER is not root",
    )
