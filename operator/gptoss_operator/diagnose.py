"""Children and pods in, status out: why a GptOssDeployment is (not) serving. Pure, no I/O.

Conditions follow metav1.Condition. `Ready` says the endpoint serves at the desired scale,
`Progressing` whether a rollout or scale-up is under way, `Degraded` what is wrong, with one
machine-readable reason. Messages carry no counters or times, so an unchanged cluster gives an
unchanged status and the operator writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gptoss_operator.render.resolve import SPEC_HASH_ANNOTATION

# Reasons, most severe first: the first one found among the pods names the problem.
OOM_KILLED = "OOMKilled"
CRASH_LOOP = "CrashLoopBackOff"
IMAGE_PULL = "ImagePullBackOff"
# The kubelet cannot build the container: a referenced Secret or key is missing (SecretMissing),
# or something else such as runAsNonRoot with an image that runs as root.
SECRET_MISSING = "SecretMissing"  # noqa: S105 - a condition reason
CONTAINER_CONFIG = "CreateContainerConfigError"
FAILED_CREATE = "FailedCreate"
UNSCHEDULABLE = "Unschedulable"
STARTUP_PROBE_FAILED = "StartupProbeFailed"
PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
ROLLED_BACK = "RolledBack"
INVALID_SPEC = "InvalidSpec"
APPLY_FAILED = "ApplyFailed"
WRITE_LOOP = "WriteLoop"
RECONCILE_ERROR = "ReconcileError"
SEVERITY = [
    OOM_KILLED,
    CRASH_LOOP,
    SECRET_MISSING,
    CONTAINER_CONFIG,
    IMAGE_PULL,
    FAILED_CREATE,
    UNSCHEDULABLE,
    STARTUP_PROBE_FAILED,
]
IMAGE_PULL_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


@dataclass(frozen=True)
class Problem:
    """Something wrong with a pod, as a reason and a message for people."""

    reason: str
    message: str


@dataclass(frozen=True)
class SecretUse:
    """A Secret key the pods read, and the spec field that names it."""

    field: str
    name: str
    key: str


@dataclass(frozen=True)
class Facts:
    """What the spec resolved to, reported in status as it is."""

    replicas: int
    spec_hash: str
    selector: str
    endpoint: str
    tensor_parallel_size: int
    gpus_per_replica: int
    image: str
    secrets: tuple[SecretUse, ...] = ()


@dataclass
class Observation:
    """Everything diagnosis looks at for one GptOssDeployment."""

    generation: int
    facts: Facts | None
    deployment: dict[str, Any] | None
    pods: list[dict[str, Any]] = field(default_factory=list)
    previous: dict[str, Any] = field(default_factory=dict)
    rolled_back_from: str | None = None
    failure: Problem | None = None  # invalid spec or a rejected apply: nothing else matters


def _mentions(message: str, secret: str) -> bool:
    # The kubelet writes `secret "NAME" not found` or `couldn't find key KEY in Secret NS/NAME`.
    return f'"{secret}"' in message or message.endswith(f"/{secret}")


def config_problem(
    pod: str, container: str, message: str, secrets: tuple[SecretUse, ...]
) -> Problem:
    """Why the kubelet could not build a container (waiting in CreateContainerConfigError)."""
    if "secret" in message.lower() or (not message and secrets):
        named = [s for s in secrets if _mentions(message, s.name)] or list(secrets)
        which = " or ".join(f"Secret {s.name} with key {s.key} ({s.field})" for s in named)
        return Problem(
            SECRET_MISSING,
            f"pod {pod}: container {container} cannot start: {which or 'a Secret'} is missing "
            "in the namespace; create it or fix the reference"
            + (f" (kubelet: {message})" if message else ""),
        )
    hint = (
        "; set spec.securityContext.runAsUser to a non-root UID, or use an image whose USER "
        "is not root"
        if "non-root" in message.lower() or "runasnonroot" in message.lower()
        else ""
    )
    return Problem(
        CONTAINER_CONFIG, f"pod {pod}: container {container} cannot start: {message}{hint}"
    )


def pod_problem(pod: dict[str, Any], secrets: tuple[SecretUse, ...] = ()) -> Problem | None:
    """The most severe problem of one pod, or None when it is fine or merely starting."""
    status = pod.get("status") or {}
    name = pod.get("metadata", {}).get("name", "?")
    found: list[Problem] = []
    for container in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        state, last = container.get("state") or {}, container.get("lastState") or {}
        cname = container.get("name", "?")
        terminated = [s.get("terminated") or {} for s in (state, last)]
        waiting = state.get("waiting") or {}
        if any(t.get("reason") == OOM_KILLED for t in terminated):
            found.append(
                Problem(
                    OOM_KILLED,
                    f"pod {name}: container {cname} was OOMKilled (exit "
                    "code 137); raise spec.resources.memory or lower maxNumSeqs",
                )
            )
        elif waiting.get("reason") == CRASH_LOOP:
            exit_code = (terminated[1] or terminated[0]).get("exitCode", "unknown")
            found.append(
                Problem(
                    CRASH_LOOP,
                    f"pod {name}: container {cname} keeps crashing "
                    f"(last exit code {exit_code}); see kubectl logs {name} --previous",
                )
            )
        elif waiting.get("reason") == CONTAINER_CONFIG:
            found.append(config_problem(name, cname, waiting.get("message", ""), secrets))
        elif waiting.get("reason") in IMAGE_PULL_WAITING:
            found.append(
                Problem(
                    IMAGE_PULL,
                    f"pod {name}: cannot pull image "
                    f"{container.get('image', '?')}: {waiting.get('message', '')}".rstrip(": "),
                )
            )
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == UNSCHEDULABLE
        ):
            found.append(Problem(UNSCHEDULABLE, f"pod {name}: {condition.get('message', '')}"))
    return min(found, key=lambda p: SEVERITY.index(p.reason), default=None)


def replica_failure(deployment: dict[str, Any] | None) -> Problem | None:
    """Pods the ReplicaSet could not even create: refused by admission (PodSecurity, quota,
    LimitRange) or a missing ServiceAccount. There is no pod to look at, only this condition."""
    failure = _deployment_condition(deployment, "ReplicaFailure")
    if failure.get("status") != "True":
        return None
    return Problem(FAILED_CREATE, f"cannot create pods: {failure.get('message', '')}".rstrip(": "))


def _starting(pod: dict[str, Any]) -> bool:
    """Running but its startup probe has not passed yet (vLLM loading weights, compiling)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any("running" in (c.get("state") or {}) and not c.get("started") for c in statuses)


def _deployment_condition(deployment: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for condition in ((deployment or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_:
            return dict(condition)
    return {}


def template_hash(deployment: dict[str, Any] | None, key: str) -> str | None:
    """The spec hash annotation on a Deployment's (or ReplicaSet's) pod template."""
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    value = (template.get("metadata") or {}).get("annotations", {}).get(key)
    return str(value) if value else None


@dataclass(frozen=True)
class Replicas:
    """Replica counts, as the scale subresource and `kubectl get` show them."""

    replicas: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _terminating(obj: dict[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def count_replicas(deployment: dict[str, Any] | None, pods: list[dict[str, Any]]) -> Replicas:
    """Counted from the pods themselves, which the kubelet reports at once; the Deployment's
    status says the same later (kube-controller-manager batches and rate-limits its updates: 45 s
    behind at 1,000 Deployments). "Updated" means running the live Deployment's pod template.
    Without live pods (none yet, or scaled to zero) the Deployment's own counts are the answer."""
    live = [p for p in pods if not _terminating(p)]
    if not live:
        status = (deployment or {}).get("status") or {}
        return Replicas(
            int(status.get("replicas", 0)),
            int(status.get("updatedReplicas", 0)),
            int(status.get("readyReplicas", 0)),
            int(status.get("availableReplicas", 0)),
        )
    template = template_hash(deployment, SPEC_HASH_ANNOTATION)
    ready = sum(1 for p in live if _pod_ready(p))
    updated = sum(
        1
        for p in live
        if template
        and (p.get("metadata") or {}).get("annotations", {}).get(SPEC_HASH_ANNOTATION) == template
    )
    # No minReadySeconds is rendered, so a ready pod is an available one.
    return Replicas(len(live), updated, ready, ready)


def rollout_complete(
    deployment: dict[str, Any] | None, replicas: int, pods: list[dict[str, Any]] | None = None
) -> bool:
    """Exactly the desired number of pods run the live Deployment's template, all ready, and no
    pod of an older template is left (terminating ones aside). Pods made from that template
    prove the Deployment controller saw it; without live pods (scaled to zero, or none yet) the
    Deployment's status must have observed its latest generation."""
    if not deployment:
        return False
    counts = count_replicas(deployment, pods or [])
    if not any(not _terminating(p) for p in pods or []):
        status = deployment.get("status") or {}
        seen = deployment.get("metadata", {}).get("generation", 0)
        if status.get("observedGeneration", 0) < seen:
            return False
    return counts.updated == counts.ready == counts.replicas == replicas


def runs_current_spec(
    deployment: dict[str, Any] | None, facts: Facts, pods: list[dict[str, Any]] | None = None
) -> bool:
    """Every replica is updated, ready and runs the pod template of the current spec."""
    return rollout_complete(deployment, facts.replicas, pods) and (
        template_hash(deployment, SPEC_HASH_ANNOTATION) == facts.spec_hash
    )


def deadline_exceeded(deployment: dict[str, Any] | None) -> bool:
    return _deployment_condition(deployment, "Progressing").get("reason") == PROGRESS_DEADLINE


def condition(type_: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def diagnose(obs: Observation) -> tuple[str, str, str, list[dict[str, Any]]]:
    """(phase, reason, message, conditions without lastTransitionTime) for an observation."""
    gen = obs.generation
    if obs.failure:
        p = obs.failure
        return (
            "Failed",
            p.reason,
            p.message,
            [
                condition("Ready", False, p.reason, p.message, gen),
                condition("Progressing", False, p.reason, p.message, gen),
                condition("Degraded", True, p.reason, p.message, gen),
            ],
        )
    assert obs.facts is not None
    desired = obs.facts.replicas
    counts = count_replicas(obs.deployment, obs.pods)
    ready = counts.ready
    serving = ready >= desired and obs.deployment is not None
    live_pods = [p for p in obs.pods if not _terminating(p)]
    pod_problems = [pod_problem(p, obs.facts.secrets) for p in live_pods]
    problems = [p for p in [*pod_problems, replica_failure(obs.deployment)] if p]
    problem = min(problems, key=lambda p: SEVERITY.index(p.reason), default=None)
    complete = runs_current_spec(obs.deployment, obs.facts, obs.pods)

    degraded: Problem | None
    if obs.rolled_back_from:
        cause = f" ({problem.reason}: {problem.message})" if problem else ""
        degraded = Problem(
            ROLLED_BACK,
            f"spec {obs.rolled_back_from} did not become available "
            f"before the progress deadline; restored the last available pod "
            f"template{cause}",
        )
    elif deadline_exceeded(obs.deployment):
        starting = any(_starting(p) for p in live_pods)
        base = problem or (
            Problem(
                STARTUP_PROBE_FAILED,
                "vLLM did not pass its startup probe before the progress deadline",
            )
            if starting
            else None
        )
        degraded = Problem(
            base.reason if base else PROGRESS_DEADLINE,
            f"rollout exceeded its progress deadline: "
            f"{base.message if base else 'no new pod became ready'}",
        )
    else:
        degraded = problem

    if obs.deployment is None:
        progress = ("Creating", "creating the vLLM Deployment")
    elif complete:
        progress = ("Complete", f"{desired}/{desired} replicas run the current spec")
    elif counts.updated < desired:
        progress = ("RollingOut", f"{counts.updated}/{desired} replicas updated")
    elif any(_starting(p) for p in live_pods):
        progress = ("Starting", "vLLM is loading the model (startup probe pending)")
    else:
        progress = (
            "ScalingUp" if ready < desired else "ScalingDown",
            f"{ready}/{desired} replicas ready",
        )
    progressing = not complete and not degraded

    ready_reason = "Available" if desired else "ScaledToZero"
    conditions = [
        condition(
            "Ready",
            serving,
            ready_reason if serving else (degraded.reason if degraded else progress[0]),
            f"{ready}/{desired} replicas ready" + (f" at {obs.facts.endpoint}" if serving else ""),
            gen,
        ),
        condition(
            "Progressing",
            progressing,
            progress[0] if not degraded else degraded.reason,
            progress[1] if not degraded else degraded.message,
            gen,
        ),
        condition(
            "Degraded",
            degraded is not None,
            degraded.reason if degraded else "AsExpected",
            degraded.message if degraded else "no problems found",
            gen,
        ),
    ]
    if degraded:
        phase, reason, message = "Degraded", degraded.reason, degraded.message
    elif complete and serving:
        phase, reason, message = "Ready", ready_reason, conditions[0]["message"]
    else:
        phase, reason, message = "Progressing", progress[0], progress[1]
    return phase, reason, message, conditions


def merge_conditions(
    previous: list[dict[str, Any]], current: list[dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Carry lastTransitionTime over from the previous conditions unless the status flipped."""
    before = {c.get("type"): c for c in previous}
    merged = []
    for c in current:
        old = before.get(c["type"])
        if old is None or old.get("status") != c["status"]:
            merged.append({**c, "lastTransitionTime": now})
        else:
            merged.append({**c, "lastTransitionTime": old.get("lastTransitionTime", now)})
    return merged


def transitions(
    previous: list[dict[str, Any]],
    current: list[dict[str, Any]],
    served_before: bool = True,
) -> list[tuple[str, str, str]]:
    """Events (type, reason, message) for the condition changes a person wants to hear of:
    problems, recoveries, readiness lost and regained, a rollout of a change. A new resource
    coming up is not news (its conditions say it; each Event is a write): no Event for the
    first status or the first Ready, unless something is wrong."""
    before = {c.get("type"): c for c in previous}
    events = []
    for c in current:
        old = before.get(c["type"], {})
        if (old.get("status"), old.get("reason")) == (c["status"], c["reason"]):
            continue
        if c["type"] == "Degraded" and c["status"] == "True":
            events.append(("Warning", c["reason"], c["message"]))
        elif not previous:
            continue
        elif c["type"] == "Degraded" and old.get("status") == "True":
            events.append(("Normal", "Recovered", "no problems found"))
        elif c["type"] == "Ready" and c["status"] == "True" and served_before:
            events.append(("Normal", "Ready", c["message"]))
        elif c["type"] == "Ready" and old.get("status") == "True":
            events.append(("Warning", "NotReady", c["message"]))
        elif c["type"] == "Progressing" and c["status"] == "True" and old.get("status") == "False":
            events.append(("Normal", c["reason"], c["message"]))
    return events


def build_status(obs: Observation, now: str) -> dict[str, Any]:
    """The whole status for an observation; `now` stamps conditions that flipped."""
    phase, reason, message, conditions = diagnose(obs)
    prev = obs.previous
    status: dict[str, Any] = {
        "observedGeneration": obs.generation,
        "phase": phase,
        "reason": reason,
        "message": message,
        "conditions": merge_conditions(prev.get("conditions") or [], conditions, now),
    }
    if obs.facts:
        f = obs.facts
        counts = count_replicas(obs.deployment, obs.pods)
        complete = runs_current_spec(obs.deployment, f, obs.pods) and not obs.rolled_back_from
        status |= {
            "replicas": counts.replicas,
            "readyReplicas": counts.ready,
            "updatedReplicas": counts.updated,
            "availableReplicas": counts.available,
            "ready": f"{counts.ready}/{f.replicas}",
            "selector": f.selector,
            "endpoint": f.endpoint,
            "tensorParallelSize": f.tensor_parallel_size,
            "gpusPerReplica": f.gpus_per_replica,
            "image": f.image,
            "specHash": f.spec_hash,
            "lastAvailableSpecHash": f.spec_hash if complete else prev.get("lastAvailableSpecHash"),
            "rolledBackSpecHash": obs.rolled_back_from,
        }
    return {k: v for k, v in status.items() if v is not None}
