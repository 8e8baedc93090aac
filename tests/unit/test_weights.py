"""Weights before GPUs, in the pure layers: the download Job rendered for every model and cache
mode, the plan's hold on the Deployment, and the status read from the Job."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gptoss_operator import diagnose, weights
from gptoss_operator.cached import cached_form
from gptoss_operator.catalog import MODELS
from gptoss_operator.reconcile import Live, apply_merge_patch, plan
from gptoss_operator.render import render_children, resolve
from gptoss_operator.render.weights import (
    CHECK_CONTAINER,
    JOB_HASH_ANNOTATION,
    PERMANENT_EXITS,
    marker_file,
)
from gptoss_operator.validation import SpecError, parse_spec

NOW = "2026-11-25T00:00:00Z"
OWNER = {"apiVersion": "gptoss.dev/v1alpha1", "kind": "GptOssDeployment", "name": "m", "uid": "u"}
CACHE_MODES: dict[str, tuple[dict[str, Any], bool]] = {
    # mode -> (spec.modelCache, whether a download Job is rendered)
    "emptyDir": ({}, False),
    "managed-claim": ({"size": "100Gi"}, True),
    "managed-claim-rwx-offline": (
        {"size": "100Gi", "accessModes": ["ReadWriteMany"], "offline": True},
        True,
    ),
    "managed-claim-no-download": ({"size": "100Gi", "download": {"enabled": False}}, False),
    "existing-claim": ({"existingClaimName": "w"}, False),
    "existing-claim-offline": ({"existingClaimName": "w", "offline": True}, False),
    "existing-claim-download": ({"existingClaimName": "w", "download": {"enabled": True}}, True),
}


def _spec(model: str, cache: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model": {"name": model},
        "accelerator": {"profile": "H200"},
        "modelCache": cache,
    } | extra


def _children(spec: dict[str, Any], name: str = "m") -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in render_children(name, "ns", parse_spec(spec), OWNER)}


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("mode", sorted(CACHE_MODES))
def test_download_job_for_every_model_and_cache_mode(model: str, mode: str) -> None:
    cache, expected = CACHE_MODES[mode]
    children = _children(_spec(model, cache))
    deployment = children["Deployment"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in deployment["containers"][0]["env"]}
    if not expected:
        assert "Job" not in children
        assert "initContainers" not in deployment
        assert ("HF_HUB_OFFLINE" in env) == bool(cache.get("offline"))
        return
    job = children["Job"]
    assert job["metadata"]["ownerReferences"] == [OWNER]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == MODELS[model].safetensors_shards
    assert spec["activeDeadlineSeconds"] == MODELS[model].download_deadline_seconds
    assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == list(PERMANENT_EXITS)
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    # CPU only: no GPU request anywhere, and a preference for nodes without GPUs.
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"memory"}
    assert pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert pod["restartPolicy"] == "Never"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == cache.get("existingClaimName", "m-model-cache")
    # Download pods are not serving pods: out of the Service/PDB selector, in the pod watch.
    labels = spec["template"]["metadata"]["labels"]
    assert (
        labels["app.kubernetes.io/name"]
        != children["Service"]["spec"]["selector"]["app.kubernetes.io/name"]
    )
    assert labels["app.kubernetes.io/managed-by"] == "gptoss-operator"
    assert labels["app.kubernetes.io/instance"] == "m"
    # The serving pods check the marker, never download, and read the harmony encodings.
    (check,) = deployment["initContainers"]
    assert check["name"] == CHECK_CONTAINER
    marker = marker_file(*_resolved(_spec(model, cache)))
    assert marker in check["command"]
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["TIKTOKEN_ENCODINGS_BASE"] == "/models/tiktoken"
    assert "nvidia.com/gpu" not in str(check["resources"])


def _resolved(spec: dict[str, Any]) -> tuple[Any, Any]:
    parsed = parse_spec(spec)
    return resolve(parsed), parsed


def test_a_revision_is_a_new_job_and_a_new_marker_other_changes_are_not() -> None:
    base = _spec("gpt-oss-20b", {"size": "100Gi"})
    first = _children(base)["Job"]
    moved = _children(base | {"model": {"name": "gpt-oss-20b", "revision": "v2"}})["Job"]
    assert moved["metadata"]["name"] != first["metadata"]["name"]
    tuned = _children(base | {"podLabels": {"team": "a"}})["Job"]
    assert tuned["metadata"]["name"] == first["metadata"]["name"]
    hashes = {j["metadata"]["annotations"][JOB_HASH_ANNOTATION] for j in (first, tuned)}
    assert len(hashes) == 2  # a different Job spec: a failed Job of these weights is replaced
    long = _children(base, name="x" * 200)["Job"]["metadata"]["name"]
    assert len(long) <= 63


def test_secrets_only_by_reference_and_the_mirror_as_hf_endpoint() -> None:
    spec = _spec(
        "gpt-oss-20b",
        {
            "size": "100Gi",
            "hfTokenSecretRef": {"name": "hf", "key": "token"},
            "download": {"endpoint": "https://mirror.example"},
        },
    )
    env = _children(spec)["Job"]["spec"]["template"]["spec"]["containers"][0]["env"]
    by_name = {e["name"]: e for e in env}
    assert by_name["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
    }
    assert by_name["HF_ENDPOINT"]["value"] == "https://mirror.example"
    assert [e["name"] for e in env] == sorted(e["name"] for e in env)


def test_single_node_claim_puts_the_download_where_the_claim_is_mounted() -> None:
    rwo = _children(_spec("gpt-oss-20b", {"size": "100Gi"}))["Job"]["spec"]["template"]["spec"]
    term = rwo["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in rwo[
        "tolerations"
    ]
    rwx_cache = {"size": "100Gi", "accessModes": ["ReadWriteMany"]}
    rwx = _children(_spec("gpt-oss-20b", rwx_cache))["Job"]["spec"]["template"]["spec"]
    assert "podAffinity" not in rwx["affinity"]
    assert "tolerations" not in rwx


@pytest.mark.parametrize(
    ("cache", "field"),
    [
        ({"download": {"enabled": True}}, "spec.modelCache.download.enabled"),
        ({"size": "1Gi", "offline": True, "download": {"enabled": False}}, "modelCache.offline"),
    ],
)
def test_a_download_needs_a_claim_and_offline_needs_weights(
    cache: dict[str, Any], field: str
) -> None:
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        parse_spec(_spec("gpt-oss-20b", cache))


# --- the plan ---------------------------------------------------------------------------------
def _cr(spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": "m", "namespace": "ns", "uid": "u", "generation": 1, "resourceVersion": "5"}
    return {"apiVersion": "gptoss.dev/v1alpha1", "kind": "GptOssDeployment", "metadata": meta,
            "spec": spec}  # fmt: skip


def _job_status(job: dict[str, Any], **status: Any) -> dict[str, Any]:
    live = copy.deepcopy(job)
    live["status"] = status
    return live


def _done(job: dict[str, Any]) -> dict[str, Any]:
    n = job["spec"]["completions"]
    complete = {"type": "Complete", "status": "True"}
    return _job_status(job, succeeded=n, conditions=[complete], startTime=NOW)


SPEC = _spec("gpt-oss-20b", {"size": "100Gi"})


def test_no_deployment_until_the_job_of_the_weights_succeeds() -> None:
    first = plan(Live(cr=_cr(SPEC)), NOW)
    kinds = [m["kind"] for m in first.apply]
    assert "Job" in kinds
    assert "Deployment" not in kinds
    assert first.status is not None
    assert first.status["phase"] == "Downloading"
    job = next(m for m in first.apply if m["kind"] == "Job")
    cr = _cr(SPEC) | {"status": first.status}
    running = _job_status(job, active=3, succeeded=1, startTime="2026-11-25T00:00:00Z")
    pod = {
        "metadata": {
            "labels": {
                "app.kubernetes.io/component": "model-download",
                "batch.kubernetes.io/job-name": job["metadata"]["name"],
            }
        },
        "status": {
            "containerStatuses": [
                {
                    "name": "download",
                    "state": {"terminated": {"exitCode": 0, "finishedAt": "2026-11-25T00:10:00Z"}},
                }
            ]
        },
    }
    children = [m for m in first.apply if m["kind"] != "Job"] + [running]
    second = plan(Live(cr=cr, children=children, pods=[pod]), NOW)
    assert "Deployment" not in [m["kind"] for m in second.apply]
    assert "Job" not in [m["kind"] for m in second.apply]  # created once, never patched
    assert second.status is not None
    w = second.status["weights"]
    assert (w["partsDone"], w["parts"], w["progress"]) == (1, 3, "33%")
    assert w["bytesDone"] == MODELS["gpt-oss-20b"].download_gb * 1e9 // 3
    # One part in 10 minutes: three in 30.
    assert w["estimatedCompletionTime"] == "2026-11-25T00:30:00Z"
    # The download pod is not diagnosed as a serving pod.
    assert second.status["ready"] == "0/1"

    done = plan(Live(cr=cr, children=[*children[:-1], _done(job)], pods=[pod]), NOW)
    assert "Deployment" in [m["kind"] for m in done.apply]
    assert done.status is not None
    ready = {c["type"]: c for c in done.status["conditions"]}["WeightsReady"]
    assert (ready["status"], ready["reason"]) == ("True", "Complete")


def _settled(spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The resource and its children once weights are complete and the rollout is done."""
    result = plan(Live(cr=_cr(spec)), NOW)
    job = next(m for m in result.apply if m["kind"] == "Job")
    children = [m for m in result.apply if m["kind"] != "Job"] + [_done(job)]
    result = plan(Live(cr=_cr(spec), children=children), NOW)
    deployment = next(m for m in result.apply if m["kind"] == "Deployment")
    deployment["metadata"]["generation"] = 1
    deployment["status"] = {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                            "updatedReplicas": 1, "availableReplicas": 1}  # fmt: skip
    children = [c for c in children if c["kind"] != "Deployment"] + [deployment]
    cr = _cr(spec)
    cr["status"] = plan(Live(cr=cr, children=children), NOW).status
    return cr, children


def test_settled_state_plans_no_write() -> None:
    cr, children = _settled(SPEC)
    again = plan(Live(cr=cr, children=children), NOW)
    assert (again.apply, again.prune, again.status) == ([], [], None)


def test_a_new_revision_keeps_the_old_template_until_its_job_succeeds_then_cleans_up() -> None:
    shared = _spec("gpt-oss-20b", {"size": "100Gi", "accessModes": ["ReadWriteMany"]})
    cr, children = _settled(shared)
    old = next(c for c in children if c["kind"] == "Deployment")
    moved = shared | {"model": {"name": "gpt-oss-20b", "revision": "v2"}, "replicas": 2}
    cr = cr | {"spec": moved, "metadata": cr["metadata"] | {"generation": 2}}
    result = plan(Live(cr=cr, children=children), NOW)
    new_job = next(m for m in result.apply if m["kind"] == "Job")
    held = next(m for m in result.apply if m["kind"] == "Deployment")
    assert held["spec"]["template"] == old["spec"]["template"]  # old pods keep serving
    assert held["spec"]["replicas"] == 2  # the rest of the spec applies
    assert result.prune == []  # the serving revision's Job stays until the rollout
    assert result.status is not None
    assert result.status["phase"] == "Downloading"
    assert result.status["readyReplicas"] == 1  # the old pod serves on

    children = [*children, _done(new_job)]
    result = plan(Live(cr=cr, children=children), NOW)
    rolled = next(m for m in result.apply if m["kind"] == "Deployment")
    assert rolled["spec"]["template"] != old["spec"]["template"]
    assert result.prune == []  # not before the new pods run
    deployment = copy.deepcopy(rolled) | {
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "readyReplicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
        }
    }
    deployment["metadata"]["generation"] = 2
    children = [c for c in children if c["kind"] != "Deployment"] + [deployment]
    result = plan(Live(cr=cr, children=children), NOW)
    assert [(c["kind"], c["metadata"]["name"]) for c in result.prune] == [
        ("Job", next(c for c in children if c["kind"] == "Job")["metadata"]["name"])
    ]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (10, "DownloadUnauthorized"),
        (11, "RepositoryNotFound"),
        (12, "RevisionNotFound"),
        (13, "DiskFull"),
        (1, "DownloadFailed"),
    ],
)
def test_a_failed_job_reports_the_pods_reason_and_message(code: int, reason: str) -> None:
    first = plan(Live(cr=_cr(SPEC)), NOW)
    job = next(m for m in first.apply if m["kind"] == "Job")
    failed = _job_status(job, failed=1, conditions=[{"type": "Failed", "status": "True"}])
    terminated = {"exitCode": code, "message": "first\nthe last line says why"}
    pod = {
        "metadata": {
            "labels": {
                "app.kubernetes.io/component": "model-download",
                "batch.kubernetes.io/job-name": job["metadata"]["name"],
            }
        },
        "status": {
            "containerStatuses": [{"name": "download", "state": {"terminated": terminated}}]
        },
    }
    children = [m for m in first.apply if m["kind"] != "Job"] + [failed]
    result = plan(Live(cr=_cr(SPEC), children=children, pods=[pod]), NOW)
    assert result.status is not None
    conditions = {c["type"]: c for c in result.status["conditions"]}
    assert conditions["WeightsReady"]["reason"] == reason
    assert conditions["Degraded"]["reason"] == reason
    assert "the last line says why" in conditions["WeightsReady"]["message"]
    assert f"delete Job {job['metadata']['name']}" in conditions["WeightsReady"]["message"]
    assert result.status["phase"] == "Degraded"
    assert "Deployment" not in [m["kind"] for m in result.apply]
    assert result.prune == []


def test_a_failed_job_from_an_older_spec_is_replaced_a_succeeded_one_never() -> None:
    first = plan(Live(cr=_cr(SPEC)), NOW)
    job = next(m for m in first.apply if m["kind"] == "Job")
    edited = SPEC | {"podLabels": {"fixed": "yes"}}
    failed = _job_status(job, conditions=[{"type": "Failed", "status": "True"}])
    others = [m for m in first.apply if m["kind"] != "Job"]
    result = plan(Live(cr=_cr(edited), children=[*others, failed]), NOW)
    assert [c["kind"] for c in result.prune] == ["Job"]
    assert result.status is not None
    assert result.status["weights"]["state"] == "Downloading"
    kept = plan(Live(cr=_cr(edited), children=[*others, _done(job)]), NOW)
    assert kept.prune == []
    assert "Job" not in [m["kind"] for m in kept.apply]


def test_deadline_exceeded_has_its_own_reason() -> None:
    job = _children(SPEC)["Job"]
    failed = _job_status(
        job, conditions=[{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    )
    view = weights.read_job(job, failed, [], "gpt-oss-20b", official=True)
    assert view.reason == weights.DEADLINE
    assert "deadlineSeconds" in view.message


def test_a_custom_repository_reports_parts_without_bytes() -> None:
    spec = SPEC | {"model": {"name": "gpt-oss-20b", "repository": "acme/gpt-oss-20b-ft"}}
    result = plan(Live(cr=_cr(spec)), NOW)
    assert result.status is not None
    assert "bytesTotal" not in result.status["weights"]
    assert result.status["weights"]["progress"] == "0%"


def test_a_serving_pod_without_the_marker_says_the_weights_are_missing() -> None:
    pod = {
        "metadata": {"name": "m-1"},
        "status": {
            "initContainerStatuses": [
                {
                    "name": CHECK_CONTAINER,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1}},
                }
            ]
        },
    }
    problem = diagnose.pod_problem(pod)
    assert problem is not None
    assert problem.reason == diagnose.WEIGHTS_MISSING


def test_a_download_pod_that_cannot_start_is_reported_while_the_job_runs() -> None:
    spec = _spec(
        "gpt-oss-20b", {"size": "100Gi", "hfTokenSecretRef": {"name": "hf", "key": "token"}}
    )
    first = plan(Live(cr=_cr(spec)), NOW)
    job = next(m for m in first.apply if m["kind"] == "Job")
    pod = {
        "metadata": {
            "name": "dl-0",
            "labels": {
                "app.kubernetes.io/component": "model-download",
                "batch.kubernetes.io/job-name": job["metadata"]["name"],
            },
        },
        "status": {
            "containerStatuses": [
                {
                    "name": "download",
                    "state": {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": 'secret "hf" not found',
                        }
                    },
                }
            ]
        },
    }
    children = [m for m in first.apply if m["kind"] != "Job"] + [_job_status(job, active=1)]
    result = plan(Live(cr=_cr(spec), children=children, pods=[pod]), NOW)
    assert result.status is not None
    assert result.status["reason"] == "SecretMissing"
    assert "spec.modelCache.hfTokenSecretRef" in result.status["message"]
    assert result.status["weights"]["state"] == "Downloading"


def test_fields_that_go_away_inside_status_weights_are_removed_and_then_nothing_is_written() -> (
    None
):
    """The estimate exists only during the download: the merge patch must remove it, or the
    stored status would differ from the plan forever (a write on every event)."""
    first = plan(Live(cr=_cr(SPEC)), NOW)
    job = next(m for m in first.apply if m["kind"] == "Job")
    others = [m for m in first.apply if m["kind"] != "Job"]
    running = _job_status(job, active=2, succeeded=1, startTime=NOW)
    finished = {"exitCode": 0, "finishedAt": "2026-11-25T00:10:00Z"}
    pod = {
        "metadata": {
            "labels": {
                "app.kubernetes.io/component": "model-download",
                "batch.kubernetes.io/job-name": job["metadata"]["name"],
            }
        },
        "status": {"containerStatuses": [{"name": "download", "state": {"terminated": finished}}]},
    }
    downloading = plan(Live(cr=_cr(SPEC), children=[*others, running], pods=[pod]), NOW)
    assert downloading.status is not None
    stored = apply_merge_patch({}, downloading.status)
    assert "estimatedCompletionTime" in stored["weights"]
    cr = _cr(SPEC) | {"status": stored}
    done = plan(Live(cr=cr, children=[*others, _done(job)], pods=[pod]), NOW)
    assert done.status is not None
    assert done.status["weights"]["estimatedCompletionTime"] is None
    cr = _cr(SPEC) | {"status": apply_merge_patch({}, done.status)}
    again = plan(Live(cr=cr, children=[*others, _done(job)], pods=[pod]), NOW)
    assert again.status is None


def test_the_watch_cache_keeps_what_the_download_status_reads() -> None:
    """Pods are trimmed in the caches (cached.py): the labels and the terminated state that
    tell a download pod and its result must survive."""
    job = _children(SPEC)["Job"]
    pod = {
        "kind": "Pod",
        "metadata": {
            "name": "m-weights-0-abcde",
            "namespace": "ns",
            "labels": {
                "app.kubernetes.io/component": "model-download",
                "batch.kubernetes.io/job-name": job["metadata"]["name"],
                "team": "dropped",
            },
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"containers": [{"name": "download"}]},
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "download",
                    "state": {"terminated": {"exitCode": 12, "message": "no revision v9"}},
                }
            ],
        },
    }
    kept = cached_form(pod)
    assert "team" not in kept["metadata"]["labels"]
    assert weights.is_download_pod(kept)
    failed = _job_status(job, failed=1, conditions=[{"type": "Failed", "status": "True"}])
    view = weights.read_job(job, cached_form(failed), [kept], "gpt-oss-20b", official=True)
    assert view.reason == weights.REVISION_NOT_FOUND
    assert "no revision v9" in view.message
