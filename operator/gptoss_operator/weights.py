"""Weights before GPUs: what the download Job says, and what the plan does about it. Pure.

`read_job` is the one place that reads a download Job and its pods (the watch caches must keep
the fields it reads: Job `spec.completions`, `status.{succeeded,failed,active,startTime,
conditions}`, pod labels and `status.containerStatuses[].state.terminated`). `hold` keeps the
Deployment from being created, or from moving to a new pod template, until the Job of the
spec's weights has succeeded. `jobs_to_prune` is the cleanup rule of docs/weights.md.
"""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass
from typing import Any

from gptoss_operator.catalog import MODELS
from gptoss_operator.render.resolve import SPEC_HASH_ANNOTATION
from gptoss_operator.render.weights import (
    COMPONENT,
    CONTAINER,
    EXIT_DISK_FULL,
    EXIT_REPOSITORY,
    EXIT_REVISION,
    EXIT_UNAUTHORIZED,
    JOB_HASH_ANNOTATION,
    WEIGHTS_ANNOTATION,
)

# WeightsReady reasons.
DOWNLOADING = "Downloading"
COMPLETE = "Complete"
DOWNLOAD_FAILED = "DownloadFailed"
UNAUTHORIZED = "DownloadUnauthorized"
REPOSITORY_NOT_FOUND = "RepositoryNotFound"
REVISION_NOT_FOUND = "RevisionNotFound"
DISK_FULL = "DiskFull"
DEADLINE = "DownloadDeadlineExceeded"
REASON_OF_EXIT = {
    EXIT_UNAUTHORIZED: UNAUTHORIZED,
    EXIT_REPOSITORY: REPOSITORY_NOT_FOUND,
    EXIT_REVISION: REVISION_NOT_FOUND,
    EXIT_DISK_FULL: DISK_FULL,
}
COMPONENT_LABEL = "app.kubernetes.io/component"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
GB = 1_000_000_000


@dataclass(frozen=True)
class WeightsView:
    """The download of one repository and revision, as the status reports it."""

    weights: str  # repository@revision
    job: str
    parts: int
    parts_done: int = 0
    active: int = 0
    complete: bool = False
    reason: str = DOWNLOADING
    message: str = ""
    bytes_total: int | None = None
    estimated_completion: str | None = None

    @property
    def failed(self) -> bool:
        return not self.complete and self.reason != DOWNLOADING

    @property
    def percent(self) -> int:
        return 100 if self.complete else (100 * self.parts_done) // max(self.parts, 1)

    @property
    def bytes_done(self) -> int | None:
        if self.bytes_total is None:
            return None
        if self.complete:
            return self.bytes_total
        return self.bytes_total * self.parts_done // self.parts

    def summary(self) -> str:
        """One line for the condition and the phase message (no times: idle means no writes)."""
        if self.complete:
            return f"weights {self.weights} complete on the model cache"
        if self.failed:
            return self.message
        size = (
            f", ~{self.bytes_done / GB:.1f} of {self.bytes_total / GB:.1f} GB"
            if (self.bytes_total and self.bytes_done is not None)
            else ""
        )
        return (
            f"downloading {self.weights} (Job {self.job}): {self.parts_done}/{self.parts} parts"
            f"{size}; GPU pods start when it completes"
        )

    def status(self) -> dict[str, Any]:
        """status.weights."""
        state = "Complete" if self.complete else ("Failed" if self.failed else "Downloading")
        out: dict[str, Any] = {
            "weights": self.weights,
            "job": self.job,
            "state": state,
            "partsDone": self.parts if self.complete else self.parts_done,
            "parts": self.parts,
            "progress": f"{self.percent}%",
        }
        if self.bytes_total is not None:
            out |= {"bytesDone": self.bytes_done, "bytesTotal": self.bytes_total}
        if self.estimated_completion and not self.complete and not self.failed:
            out["estimatedCompletionTime"] = self.estimated_completion
        return out


def is_download_pod(pod: dict[str, Any]) -> bool:
    return (pod.get("metadata", {}).get("labels") or {}).get(COMPONENT_LABEL) == COMPONENT


def of_job(pod: dict[str, Any], job: str) -> bool:
    return (pod.get("metadata", {}).get("labels") or {}).get(JOB_NAME_LABEL) == job


def _condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return dict(c)
    return None


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    for c in (pod.get("status") or {}).get("containerStatuses") or []:
        if c.get("name") == CONTAINER:
            return dict((c.get("state") or {}).get("terminated") or {})
    return {}


def _failure(job: dict[str, Any], pods: list[dict[str, Any]]) -> tuple[str, str]:
    """Reason and message of a failed Job: the last failed pod's exit code and termination
    message (what the script wrote), else the Job's own condition."""
    failed = _condition(job, "Failed") or {}
    name = job["metadata"]["name"]
    if failed.get("reason") == "DeadlineExceeded":
        return DEADLINE, (
            f"download Job {name} exceeded its deadline (spec.modelCache.download."
            "deadlineSeconds); a slow mirror or link needs a longer one"
        )
    ended = [(t.get("finishedAt") or "", t) for p in pods if (t := _terminated(p))]
    errors = [t for _, t in sorted(ended, key=lambda e: e[0]) if t.get("exitCode")]
    last = errors[-1] if errors else {}
    code = int(last.get("exitCode", 0) or 0)
    said = str(last.get("message") or failed.get("message") or "no message").strip()
    said = said.splitlines()[-1] if said else said
    hint = (
        "; fix it and the operator retries when spec.model or spec.modelCache changes, or "
        f"delete Job {name} to retry now"
    )
    return REASON_OF_EXIT.get(code, DOWNLOAD_FAILED), (
        f"download Job {name} failed (exit code {code}): {said}{hint}"
    )


def _estimate(job: dict[str, Any], pods: list[dict[str, Any]], done: int, total: int) -> str | None:
    """When the download should end at the pace of the parts finished so far: from the Job's
    start and the finish times of its succeeded pods, so the same cluster state gives the same
    estimate (no clock: an idle operator writes nothing)."""
    start = (job.get("status") or {}).get("startTime")
    finishes = [
        t["finishedAt"]
        for p in pods
        if (t := _terminated(p)) and t.get("exitCode") == 0 and t.get("finishedAt")
    ]
    if not start or not finishes or not 0 < done < total:
        return None
    begun = _time(start)
    elapsed = (_time(max(finishes)) - begun).total_seconds()
    end = begun + datetime.timedelta(seconds=round(elapsed * total / done))
    return end.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def read_job(
    desired: dict[str, Any],
    live: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    model: str,
    official: bool,
) -> WeightsView:
    """The state of the download the spec asks for: `desired` is the rendered Job, `live` the
    cached one (None before it is created), `pods` the cached download pods of this resource.
    `official`: the catalog's repository, whose size is known (bytes in status)."""
    name = desired["metadata"]["name"]
    weights = desired["metadata"]["annotations"][WEIGHTS_ANNOTATION]
    total = int(desired["spec"]["completions"])
    size = int(MODELS[model].download_gb * GB) if official else None
    if live is None:
        return WeightsView(weights, name, total, bytes_total=size)
    mine = [p for p in pods if of_job(p, name)]
    status = live.get("status") or {}
    done = min(int(status.get("succeeded", 0)), total)
    base = WeightsView(
        weights,
        name,
        total,
        parts_done=done,
        active=int(status.get("active", 0)),
        bytes_total=size,
        estimated_completion=_estimate(live, mine, done, total),
    )
    if _condition(live, "Complete"):
        return WeightsView(weights, name, total, total, complete=True, bytes_total=size)
    if _condition(live, "Failed"):
        reason, message = _failure(live, mine)
        return WeightsView(
            weights, name, total, done, reason=reason, message=message, bytes_total=size
        )
    return base


def stale(desired: dict[str, Any], live: dict[str, Any] | None, view: WeightsView) -> bool:
    """A Job of these weights that was rendered from another spec and has not succeeded: it
    is deleted, and created again from the current spec (the retry after a fix). A succeeded
    Job stays whatever changed: its weights are on the claim."""
    if live is None or view.complete:
        return False
    annotation = (live["metadata"].get("annotations") or {}).get(JOB_HASH_ANNOTATION)
    return bool(annotation != desired["metadata"]["annotations"][JOB_HASH_ANNOTATION])


def hold(desired_deployment: dict[str, Any], live_deployment: dict[str, Any] | None) -> bool:
    """Keep the GPUs off until the weights are complete: without a live Deployment, do not
    create one (returns False: drop it from the plan); with one, keep its pod template (its pods
    go on serving the weights they have) and apply the rest (replicas)."""
    if live_deployment is None:
        return False
    template = copy.deepcopy((live_deployment.get("spec") or {}).get("template") or {})
    (template.get("metadata") or {}).pop("creationTimestamp", None)
    desired_deployment["spec"]["template"] = template
    live_hash = ((live_deployment.get("metadata") or {}).get("annotations") or {}).get(
        SPEC_HASH_ANNOTATION
    )
    if live_hash:
        desired_deployment["metadata"]["annotations"][SPEC_HASH_ANNOTATION] = live_hash
    return True


def jobs_to_prune(
    live_jobs: list[dict[str, Any]], keep: str | None, rolled_out: bool
) -> list[dict[str, Any]]:
    """Download Jobs of other weights: at once when they never completed (a revision changed
    mid-download), the others once the Deployment runs the current spec (until then the old
    pods may restart on the weights that Job certified, and its record stays)."""
    return [
        j
        for j in live_jobs
        if j["metadata"]["name"] != keep and (rolled_out or not _condition(j, "Complete"))
    ]
