"""Weights before GPUs (issue 12): the download Job fills the model cache, and GPU pods come after.

kwok plays the download pods (tests/testbed/stages/pod-behaviours.yaml: `sim.gptoss.dev/download`
and its annotations); the real Job controller and garbage collector of kube-controller-manager
count indexes, fail Jobs by their podFailurePolicy and delete children.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

from support.gptoss import apply, child, condition, get, manifest, wait_condition
from support.operator import OperatorProcess
from support.testbed import Testbed, wait_until

pytestmark = pytest.mark.testbed
OPERATOR_USER = "gptoss-operator"
IDLE_SECONDS = 8
HASH = "gptoss.dev/spec-hash"


def jobs(testbed: Testbed, namespace: str, name: str) -> list[dict[str, Any]]:
    items = testbed.get("-n", namespace, "jobs", "-l", f"app.kubernetes.io/instance={name}")[
        "items"
    ]
    return [j for j in items if not j["metadata"].get("deletionTimestamp")]


def serving_pods(testbed: Testbed, namespace: str, name: str) -> list[dict[str, Any]]:
    items = testbed.get(
        "-n",
        namespace,
        "pods",
        "-l",
        f"app.kubernetes.io/instance={name},app.kubernetes.io/name=gpt-oss",
    )["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def table_row(testbed: Testbed, namespace: str, name: str) -> dict[str, str]:
    """`kubectl get gptoss NAME` as the user sees it: column name -> value."""
    lines = testbed.kubectl("-n", namespace, "get", "gptoss", name).stdout.splitlines()
    header, row = lines[0].split(), lines[1].split()
    return dict(zip(header, row, strict=False))


def seconds(timestamp: str) -> float:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def completion_to_deployment(testbed: Testbed, since: int, namespace: str, job: str) -> float:
    """Seconds from the Job controller's last status write to the Job (the one that marks it
    Complete) to the operator's creation of the Deployment, from the audit log (microseconds)."""
    events = [
        e for e in testbed.audit_events(since) if e["objectRef"].get("namespace") == namespace
    ]
    created = next(
        e
        for e in events
        # Server-side apply creates with a PATCH; the first one not a dry-run is the creation.
        if e["verb"] in ("create", "patch")
        and e["objectRef"].get("resource") == "deployments"
        and e.get("user", {}).get("username") == OPERATOR_USER
        and "dryRun" not in e.get("requestURI", "")
    )
    completed = [
        e
        for e in events
        if e["verb"] in ("update", "patch")
        and e["objectRef"].get("resource") == "jobs"
        and e["objectRef"].get("subresource") == "status"
        and e["objectRef"].get("name") == job
        and e["requestReceivedTimestamp"] < created["requestReceivedTimestamp"]
    ]
    return seconds(created["requestReceivedTimestamp"]) - seconds(completed[-1]["stageTimestamp"])


def weights(**download: Any) -> dict[str, Any]:
    return {"size": "50Gi", "download": download}


def _complete(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)


def test_managed_cache_downloads_first_shows_progress_then_serves(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    body = manifest(
        "dl",
        modelCache=weights(parts=3, parallelism=1),
        podAnnotations={"sim.gptoss.dev/download-after": "3s"},
    )
    mark = testbed.audit_mark()
    apply(testbed, namespace, body)
    wait_until(lambda: jobs(testbed, namespace, "dl"), 30, "the download Job")
    assert child(testbed, namespace, "pvc", "dl-model-cache")
    (job,) = jobs(testbed, namespace, "dl")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 3

    # While it downloads: no Deployment (no GPU pod), and the progress in `kubectl get`.
    seen: set[str] = set()

    def progressed() -> bool:
        # No GPU pod before the weights: read the Deployment and the pods first, the Job
        # after. Anything serving at the first read means the Job was complete before it,
        # so it must be complete at the second (the other order races the completion).
        serving = child(testbed, namespace, "deployment", "dl") or serving_pods(
            testbed, namespace, "dl"
        )
        if serving:
            assert all(_complete(j) for j in jobs(testbed, namespace, "dl")), serving
        row = table_row(testbed, namespace, "dl")
        if row.get("PHASE") == "Downloading":
            if row.get("WEIGHTS", "") not in seen:  # shown once per step, for the docs
                print("\n" + testbed.kubectl("-n", namespace, "get", "gptoss", "-o", "wide").stdout)
            seen.add(row.get("WEIGHTS", ""))
        return row.get("WEIGHTS") == "100%"

    wait_until(progressed, 60, "the download to complete", interval=0.5)
    assert {"33%", "66%"} & seen, seen
    obj = get(testbed, namespace, "dl")
    assert condition(obj, "WeightsReady")["reason"] == "Complete"

    ready = wait_condition(testbed, namespace, "dl", "Ready", timeout=60)
    assert ready["status"]["weights"]["state"] == "Complete"
    (job,) = jobs(testbed, namespace, "dl")
    deployment = child(testbed, namespace, "deployment", "dl")
    assert deployment is not None
    lag = completion_to_deployment(testbed, mark, namespace, job["metadata"]["name"])
    print(f"\nJob complete -> Deployment created: {lag * 1000:.0f} ms (audit log)")
    assert 0 < lag < 5
    # The serving pod checks the marker and runs offline.
    spec = deployment["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["name"] == "weights-check"
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["TIKTOKEN_ENCODINGS_BASE"] == "/models/tiktoken"

    assert testbed.writes_during(IDLE_SECONDS, OPERATOR_USER, namespace) == []


def test_idle_while_downloading_writes_nothing(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    body = manifest(
        "slow",
        modelCache=weights(parts=2, parallelism=2),
        podAnnotations={"sim.gptoss.dev/download-after": "120s"},
    )
    apply(testbed, namespace, body)

    def running() -> bool:
        found = jobs(testbed, namespace, "slow")
        return bool(found) and found[0].get("status", {}).get("ready") == 2

    wait_until(running, 30, "both download pods running")
    wait_condition(testbed, namespace, "slow", "WeightsReady", "False", "Downloading")
    assert testbed.writes_during(IDLE_SECONDS, OPERATOR_USER, namespace) == []
    assert child(testbed, namespace, "deployment", "slow") is None


def test_failed_download_says_why_holds_gpus_and_retries_on_spec_change(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    failing = manifest(
        "gated",
        modelCache=weights(parts=1, backoffLimit=2),
        podLabels={"sim.gptoss.dev/download": "fail"},
        podAnnotations={
            "sim.gptoss.dev/download-exit-code": "10",
            "sim.gptoss.dev/download-message": "openai/gpt-oss-20b is gated: accept its terms",
        },
    )
    apply(testbed, namespace, failing)
    obj = wait_condition(
        testbed, namespace, "gated", "WeightsReady", "False", "DownloadUnauthorized"
    )
    message = condition(obj, "WeightsReady")["message"]
    assert "is gated: accept its terms" in message
    assert "exit code 10" in message
    assert obj["status"]["phase"] == "Degraded"
    assert condition(obj, "Degraded")["reason"] == "DownloadUnauthorized"
    (job,) = jobs(testbed, namespace, "gated")
    # podFailurePolicy: a refused token fails the Job at once, not after backoffLimit retries.
    assert job["status"].get("failed") == 1
    failed = [c for c in job["status"]["conditions"] if c["type"] == "Failed"]
    assert failed[0]["reason"] == "PodFailurePolicy"
    assert child(testbed, namespace, "deployment", "gated") is None
    assert testbed.writes_during(IDLE_SECONDS, OPERATOR_USER, namespace) == []

    # The fix changes the download's pods: the failed Job is replaced and the download succeeds.
    fixed = manifest("gated", modelCache=weights(parts=1, backoffLimit=2))
    apply(testbed, namespace, fixed)
    wait_condition(testbed, namespace, "gated", "Ready", timeout=60)
    (again,) = jobs(testbed, namespace, "gated")
    assert again["metadata"]["name"] == job["metadata"]["name"]
    assert again["metadata"]["uid"] != job["metadata"]["uid"]


def test_new_revision_downloads_beside_the_old_and_rolls_only_when_complete(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    first = manifest("rev", model={"name": "gpt-oss-20b", "revision": "v1"}, modelCache=weights())
    apply(testbed, namespace, first)
    wait_condition(testbed, namespace, "rev", "Ready", timeout=60)
    (old_job,) = jobs(testbed, namespace, "rev")
    old_pods = {p["metadata"]["name"] for p in serving_pods(testbed, namespace, "rev")}
    old_hash = child(testbed, namespace, "deployment", "rev")["spec"]["template"]["metadata"][
        "annotations"
    ][HASH]

    second = manifest(
        "rev",
        model={"name": "gpt-oss-20b", "revision": "v2"},
        modelCache=weights(),
        podAnnotations={"sim.gptoss.dev/download-after": "15s"},
    )
    apply(testbed, namespace, second)
    obj = wait_condition(testbed, namespace, "rev", "WeightsReady", "False", "Downloading")
    assert obj["status"]["weights"]["weights"] == "openai/gpt-oss-20b@v2"
    names = {j["metadata"]["name"] for j in jobs(testbed, namespace, "rev")}
    assert old_job["metadata"]["name"] in names
    assert len(names) == 2
    (new_job,) = names - {old_job["metadata"]["name"]}
    held = []

    def rolled() -> bool:
        """Every look until the new template appears: while the new Job has not completed, the
        old template and the old pods stay (the hold outlives the 2 s settle window). The Job
        is read last: when it is not complete then, it was not when the rest was read."""
        d = child(testbed, namespace, "deployment", "rev") or {}
        changed = d["spec"]["template"]["metadata"]["annotations"][HASH] != old_hash
        pods = {p["metadata"]["name"] for p in serving_pods(testbed, namespace, "rev")}
        obj = get(testbed, namespace, "rev")
        job = child(testbed, namespace, "job", new_job) or {}
        if not job.get("status", {}).get("completionTime"):
            assert not changed, "the template changed before the new weights were complete"
            assert pods == old_pods
            if obj["status"].get("phase") == "Downloading":
                assert condition(obj, "Ready")["status"] == "True"
                held.append(time.monotonic())
        return changed

    wait_until(rolled, 60, "the new template once the weights are complete", interval=0.5)
    assert held[-1] - held[0] > 5, "the old pods served through the download"
    assert condition(get(testbed, namespace, "rev"), "WeightsReady")["status"] == "True"
    wait_condition(testbed, namespace, "rev", "Ready", timeout=60)

    def cleaned() -> bool:
        return [j["metadata"]["name"] for j in jobs(testbed, namespace, "rev")] == [
            n for n in names if n != old_job["metadata"]["name"]
        ]

    wait_until(cleaned, 30, "the old revision's Job deleted after the rollout")
    assert testbed.writes_during(IDLE_SECONDS, OPERATOR_USER, namespace) == []


def test_deleting_the_resource_removes_its_job_and_managed_claim_not_an_existing_one(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    testbed.apply(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "team-weights"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "100Gi"}},
            },
        },
    )
    apply(testbed, namespace, manifest("managed", modelCache=weights()))
    shared = manifest(
        "shared", modelCache={"existingClaimName": "team-weights", "download": {"enabled": True}}
    )
    apply(testbed, namespace, shared)
    for name in ("managed", "shared"):
        wait_condition(testbed, namespace, name, "Ready", timeout=60)
        assert jobs(testbed, namespace, name)
    testbed.kubectl("-n", namespace, "delete", "gptoss", "managed", "shared", "--wait=true")

    def collected() -> bool:
        return (
            not jobs(testbed, namespace, "managed")
            and not jobs(testbed, namespace, "shared")
            and child(testbed, namespace, "pvc", "managed-model-cache") is None
        )

    wait_until(collected, 60, "the garbage collector to delete the Jobs and the managed claim")
    assert child(testbed, namespace, "pvc", "team-weights") is not None
