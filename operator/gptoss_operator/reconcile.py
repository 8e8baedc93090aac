"""The reconcile plan: desired state against live state, as data. Pure, no I/O.

`plan()` renders the whole desired state from the spec, decides which children must be applied
or pruned (only those that differ from what is live, so an unchanged cluster costs no write),
handles automatic rollback, and computes the status and the Events of its transitions.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gptoss_operator import diagnose, settings, weights
from gptoss_operator.api import GROUP, KIND, VERSION, GptOssDeploymentSpec
from gptoss_operator.catalog import MODELS
from gptoss_operator.diagnose import Facts, Observation, Problem, SecretUse
from gptoss_operator.render import (
    BY_KIND,
    SPEC_HASH_ANNOTATION,
    Resolved,
    endpoint_url,
    render_resolved,
    resolve_validated,
    secret_refs,
    selector_string,
)
from gptoss_operator.validation import SpecError, parse_spec

# Set by the apiserver on every write; never a reason to write again.
_VOLATILE_METADATA = ("resourceVersion", "managedFields", "generation")


@dataclass
class Live:
    """What the cluster holds for one GptOssDeployment, from the operator's watch caches."""

    cr: dict[str, Any]
    children: list[dict[str, Any]] = field(default_factory=list)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    # The HPA of the autoscaler (KEDA's), when there is one.
    autoscalers: list[dict[str, Any]] = field(default_factory=list)
    # Child kinds of add-ons the apiserver does not serve (KEDA not installed): not rendered.
    unserved: frozenset[str] = frozenset()


@dataclass
class Plan:
    """What one reconcile will write. Empty lists and `status=None` mean: write nothing."""

    apply: list[dict[str, Any]] = field(default_factory=list)
    prune: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)


def owner_reference(cr: dict[str, Any]) -> dict[str, Any]:
    meta = cr["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_subset(desired: Any, live: Any) -> bool:
    """Whether every field of `desired` has the same value in `live` (which may hold more:
    defaults, status, fields of other managers). Lists of named items match by name."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            k in live and is_subset(v, live[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list):
            return False
        if all(isinstance(i, dict) and "name" in i for i in desired):
            by_name = {i.get("name"): i for i in live if isinstance(i, dict)}
            return len(by_name) == len(desired) and all(
                is_subset(i, by_name.get(i["name"])) for i in desired
            )
        return len(desired) == len(live) and all(map(is_subset, desired, live))
    # The apiserver returns quantities and ports in its own types; compare their text.
    return desired == live or (live is not None and str(desired) == str(live))


def first_difference(desired: Any, live: Any, path: str = "") -> str | None:
    """The path of the first field of `desired` that `live` does not hold (None when
    `is_subset` holds), for messages that name what keeps differing."""
    if isinstance(desired, dict) and isinstance(live, dict):
        for k, v in desired.items():
            found = first_difference(v, live.get(k), f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live):
        for i, (d, v) in enumerate(zip(desired, live, strict=True)):
            found = first_difference(d, v, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if is_subset(desired, live) else (path.lstrip(".") or "(whole object)")


def stored_content(obj: dict[str, Any]) -> dict[str, Any]:
    """What an object holds for the operator to compare: everything but status and the
    metadata the apiserver changes on every write."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_METADATA}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def resource_version(obj: Mapping[str, Any] | None) -> int:
    """An object's (or a list's) resourceVersion as a number; -1 when it has none.

    resourceVersion is opaque by contract; every apiserver backed by etcd3 hands out its
    increasing revision, which is all the staleness checks need. Unknown forms never skip a
    write and never mark a ghost."""
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion", "-1"))
    except ValueError:
        return -1


def status_urgent(previous: dict[str, Any], status: dict[str, Any]) -> bool:
    """Whether a status change is news to write at once: the first status unless it is only
    "progressing", a spec edit seen, a phase change, a condition flipping. Otherwise it is
    progress (counts, the step of a rollout), which the next change soon restates."""
    if not previous.get("phase"):
        return status.get("phase") != "Progressing"
    if previous.get("observedGeneration") != status.get("observedGeneration"):
        return True
    if previous.get("phase") != status.get("phase"):
        return True
    before = {c.get("type"): c.get("status") for c in previous.get("conditions") or []}
    return any(before.get(c.get("type")) != c.get("status") for c in status.get("conditions") or [])


def key_of(manifest: dict[str, Any]) -> tuple[str, str]:
    return manifest["kind"], manifest["metadata"]["name"]


def restore_template(
    desired: dict[str, Any], replicasets: list[dict[str, Any]], spec_hash: str
) -> bool:
    """Put the pod template of the ReplicaSet that ran `spec_hash` into the desired Deployment."""
    for rs in replicasets:
        if diagnose.template_hash(rs, SPEC_HASH_ANNOTATION) == spec_hash:
            template = copy.deepcopy(rs["spec"]["template"])
            template["metadata"].get("labels", {}).pop("pod-template-hash", None)
            template["metadata"].pop("creationTimestamp", None)
            desired["spec"]["template"] = template
            return True
    return False


def _failed(live: Live, problem: Problem, now: str) -> Plan:
    """Status for a spec the operator will not apply. The children stay as they are, so the
    counts, selector and facts keep describing what runs: the scale subresource and an HPA
    keep working while the admin fixes the spec."""
    cr = live.cr
    previous = cr.get("status") or {}
    deployment = next((c for c in live.children if c["kind"] == "Deployment"), None)
    facts = None
    if deployment is not None and previous.get("selector"):
        facts = Facts(
            replicas=int((deployment.get("spec") or {}).get("replicas", 0)),
            spec_hash=str(previous.get("specHash", "")),
            selector=str(previous["selector"]),
            endpoint=str(previous.get("endpoint", "")),
            tensor_parallel_size=int(previous.get("tensorParallelSize", 0)),
            gpus_per_replica=int(previous.get("gpusPerReplica", 0)),
            image=str(previous.get("image", "")),
        )
    obs = Observation(
        generation=cr["metadata"].get("generation", 0),
        facts=facts,
        deployment=deployment,
        pods=live.pods,
        previous=previous,
        failure=problem,
    )
    return _with_status(Plan(), cr, diagnose.build_status(obs, now))


def merge_patch(previous: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch from `previous` to `status`: fields that went away are removed only
    when named with None, inside objects too (status.autoscaler.message)."""
    patch: dict[str, Any] = {k: None for k in previous if k not in status}
    for key, value in status.items():
        old = previous.get(key)
        patch[key] = (
            merge_patch(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
        )
    return patch


def apply_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`target` with a JSON merge patch applied (RFC 7386), as the apiserver stores a status."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            old = merged.get(key)
            merged[key] = apply_merge_patch(old if isinstance(old, dict) else {}, value)
        else:
            merged[key] = value
    return merged


def _with_status(plan: Plan, cr: dict[str, Any], status: dict[str, Any]) -> Plan:
    previous = cr.get("status") or {}
    if status != previous:
        plan.status = merge_patch(previous, status)
        plan.events += diagnose.transitions(
            previous.get("conditions") or [],
            status.get("conditions") or [],
            served_before=bool(previous.get("lastAvailableSpecHash")),
        )
    return plan


def plan(live: Live, now: str, apply_failure: Problem | None = None) -> Plan:
    """The writes that make the cluster match the GptOssDeployment `live.cr`."""
    cr = live.cr
    meta = cr["metadata"]
    previous = cr.get("status") or {}
    try:
        # Validated and resolved once per reconcile; rendering uses the result.
        spec = parse_spec(cr.get("spec") or {})
        resolved = resolve_validated(spec, settings.current().gpu_node_labels)
    except SpecError as error:
        return _failed(live, Problem(diagnose.INVALID_SPEC, str(error)), now)
    if apply_failure:
        return _failed(live, apply_failure, now)

    desired = render_resolved(meta["name"], meta["namespace"], spec, resolved, owner_reference(cr))
    desired = [m for m in desired if m["kind"] not in live.unserved]
    deployment = next(m for m in desired if m["kind"] == "Deployment")
    spec_hash = diagnose.template_hash(deployment, SPEC_HASH_ANNOTATION) or ""
    live_by_key = {key_of(c): c for c in live.children}
    live_deployment = live_by_key.get(key_of(deployment))

    rolled_back_from = _rollback(
        spec, previous, deployment, live_deployment, live.replicasets, spec_hash
    )
    pods = [p for p in live.pods if not weights.is_download_pod(p)]
    facts = Facts(
        replicas=spec.replicas,
        spec_hash=spec_hash,
        selector=selector_string(meta["name"]),
        endpoint=endpoint_url(meta["name"], meta["namespace"], spec),
        tensor_parallel_size=resolved.tensor_parallel_size,
        gpus_per_replica=resolved.gpus_per_replica,
        image=resolved.image,
        secrets=tuple(SecretUse(*ref) for ref in secret_refs(spec)),
    )
    view, job_prune = _weights_gate(live, spec, resolved, desired, live_deployment, facts)
    result = Plan(
        apply=[m for m in desired if not is_subset(m, live_by_key.get(key_of(m)))],
        prune=[
            c
            for k, c in live_by_key.items()
            if k[0] in BY_KIND and BY_KIND[k[0]].prunable and k not in {key_of(m) for m in desired}
        ]
        + job_prune,
    )
    obs = Observation(
        generation=meta.get("generation", 0),
        facts=facts,
        deployment=live_deployment,
        pods=pods,
        previous=previous,
        rolled_back_from=rolled_back_from,
        weights=view,
        download_pods=[
            p
            for p in live.pods
            if weights.is_download_pod(p) and view is not None and weights.of_job(p, view.job)
        ],
    )
    status = diagnose.build_status(obs, now)
    autoscaler = autoscaler_status(spec, live)
    if autoscaler is not None:
        status["autoscaler"] = autoscaler
    result = _with_status(result, cr, status)
    said = (previous.get("autoscaler") or {}).get("message")
    if result.status is not None and autoscaler and autoscaler.get("message") not in (None, said):
        result.events.append(("Warning", "AutoscalingUnavailable", autoscaler["message"]))
    return result


def autoscaler_status(spec: GptOssDeploymentSpec, live: Live) -> dict[str, Any] | None:
    """status.autoscaler: the bounds, and what KEDA's HPA sees and wants (read from its status;
    KEDA names it keda-hpa-<name>)."""
    auto = spec.autoscaling
    if not auto.enabled:
        return None
    status: dict[str, Any] = {"minReplicas": auto.min_replicas, "maxReplicas": auto.max_replicas}
    if "ScaledObject" in live.unserved:
        status["message"] = (
            "spec.autoscaling needs KEDA: this cluster does not serve keda.sh/v1alpha1 "
            "ScaledObjects; replicas stay at spec.replicas"
        )
        return status
    name = f"keda-hpa-{live.cr['metadata']['name']}"
    hpa = next((h for h in live.autoscalers if h["metadata"]["name"] == name), None)
    if hpa is None:
        return status
    hpa_status = hpa.get("status") or {}
    status["name"] = name
    for key in ("currentReplicas", "desiredReplicas", "lastScaleTime"):
        if hpa_status.get(key) is not None:
            status[key] = hpa_status[key]
    return status


def _weights_gate(
    live: Live,
    spec: GptOssDeploymentSpec,
    resolved: Resolved,
    desired: list[dict[str, Any]],
    live_deployment: dict[str, Any] | None,
    facts: Facts,
) -> tuple[weights.WeightsView | None, list[dict[str, Any]]]:
    """GPUs only after weights (docs/weights.md): edits `desired` so that a download Job is
    created but never patched, and the Deployment is not created, or keeps its pod template,
    until the Job of the spec's weights has succeeded. Returns the download's state and the
    Jobs to delete (a stale Job of these weights, Jobs of other weights)."""
    job = next((m for m in desired if m["kind"] == "Job"), None)
    live_jobs = [c for c in live.children if c["kind"] == "Job"]
    rolled_out = diagnose.runs_current_spec(live_deployment, facts)
    if job is None:
        return None, weights.jobs_to_prune(live_jobs, None, rolled_out)
    live_job = next((j for j in live_jobs if key_of(j) == key_of(job)), None)
    download_pods = [p for p in live.pods if weights.is_download_pod(p)]
    official = resolved.repository == MODELS[spec.model.name].repository
    view = weights.read_job(job, live_job, download_pods, spec.model.name, official)
    prune = weights.jobs_to_prune(live_jobs, key_of(job)[1], rolled_out)
    if live_job is not None:
        desired.remove(job)  # a Job's pod template is immutable: created once, never patched
        if weights.stale(job, live_job, view):
            prune.append(live_job)  # created again from the current spec once it is gone
            view = weights.read_job(job, None, [], spec.model.name, official)
    if not view.complete:
        deployment = next(m for m in desired if m["kind"] == "Deployment")
        if not weights.hold(deployment, live_deployment):
            desired.remove(deployment)
    return view, prune


def _rollback(
    spec: GptOssDeploymentSpec,
    previous: dict[str, Any],
    deployment: dict[str, Any],
    live_deployment: dict[str, Any] | None,
    replicasets: list[dict[str, Any]],
    spec_hash: str,
) -> str | None:
    """Decide the rollback state and, when rolled back, swap in the last available template.

    Returns the spec hash that was rolled back from (kept in status while the spec is unchanged),
    or None. A rollback starts when the live Deployment runs this spec, has exceeded its progress
    deadline, and a ReplicaSet of the last available spec still exists.
    """
    if not spec.rollout.auto_rollback:
        return None
    last_good = previous.get("lastAvailableSpecHash")
    if not last_good or last_good == spec_hash:
        return None
    already = previous.get("rolledBackSpecHash") == spec_hash
    failing = diagnose.template_hash(
        live_deployment, SPEC_HASH_ANNOTATION
    ) == spec_hash and diagnose.deadline_exceeded(live_deployment)
    if (already or failing) and restore_template(deployment, replicasets, last_good):
        return spec_hash
    return None
