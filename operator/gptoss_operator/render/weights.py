"""The download Job that fills the model-cache claim before any GPU pod starts (docs/weights.md).

An Indexed Job in the vLLM image (it ships huggingface_hub): index i downloads its share of the
repository's files at the pinned revision, verifies them (sha256 of every LFS file, the size of
the others), and records its part on the claim; the last part to finish writes the completion
marker the serving pods check before `vllm serve`. Progress is the Job's own count of finished
indexes, which the operator already watches: no pod logs, no writes from the pods.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from gptoss_operator import flags as f
from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.catalog import MODELS
from gptoss_operator.render.command import secret_env
from gptoss_operator.render.resolve import (
    CACHE_MOUNT,
    ENCODINGS_DIR,
    INSTANCE_LABEL,
    Resolved,
    cache_claim_name,
    labels,
)
from gptoss_operator.render.security import container_security_context, pod_security_context

COMPONENT = "model-download"
CONTAINER = "download"
CHECK_CONTAINER = "weights-check"
CACHE_VOLUME = "model-cache"
# Download pods are not serving pods: another app name keeps them out of the Service, PDB,
# NetworkPolicy and scale selectors (app.kubernetes.io/name=gpt-oss), while the managed-by and
# instance labels put them in the operator's (label-filtered) pod watch for their messages.
POD_APP_NAME = "gpt-oss-weights"
JOB_HASH_ANNOTATION = "gptoss.dev/job-hash"
WEIGHTS_ANNOTATION = "gptoss.dev/weights"
MARKER_ROOT = f"{CACHE_MOUNT}/.gptoss/weights"
DEFAULT_ENCODINGS_URL = "https://openaipublic.blob.core.windows.net/encodings"
# vLLM skips these copies of the weights (original checkpoint, Metal build): never fetched.
IGNORED = ("original/*", "metal/*")
NAME_MAX = 40

# Exit codes of the download script, and the condition reason each one becomes. The Job fails at
# once on these (podFailurePolicy FailJob): retrying a refused token or a missing revision only
# burns time. Any other exit code is retried up to backoffLimit (network errors, a corrupt file).
EXIT_UNAUTHORIZED = 10
EXIT_REPOSITORY = 11
EXIT_REVISION = 12
EXIT_DISK_FULL = 13
EXIT_VERIFY = 14
PERMANENT_EXITS = (EXIT_UNAUTHORIZED, EXIT_REPOSITORY, EXIT_REVISION, EXIT_DISK_FULL)

# The program of every download pod, run as `python3 -c`. Standard library plus huggingface_hub
# (the contract test checks every name it uses against the pinned vLLM's huggingface_hub).
SCRIPT = r"""
import errno, fnmatch, hashlib, json, os, sys, time, urllib.request
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, RepositoryNotFoundError,
                                    RevisionNotFoundError)

E = os.environ


def fail(code, message):
    print(message, file=sys.stderr, flush=True)
    try:
        with open(E.get("GPTOSS_TERMINATION_LOG", "/dev/termination-log"), "w") as log:
            log.write(message[:3500])
    except OSError:
        pass
    sys.exit(code)


def status_of(error):
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def share(files, parts, index):
    # Largest file first to the part with the fewest bytes: parts of about equal size, and the
    # same split in every pod (sorted input, ties broken by index).
    loads, mine = [0] * parts, []
    for s in sorted(files, key=lambda s: (-(s.size or 0), s.rfilename)):
        part = min(range(parts), key=lambda i: (loads[i], i))
        loads[part] += s.size or 0
        if part == index:
            mine.append(s)
    return mine


def encodings(url):
    directory, sha = E["GPTOSS_ENCODINGS_DIR"], E["GPTOSS_ENCODINGS_SHA256"]
    target = os.path.join(directory, "o200k_base.tiktoken")
    if os.path.exists(target) and sha256(target) == sha:
        return
    os.makedirs(directory, exist_ok=True)
    with urllib.request.urlopen(url.rstrip("/") + "/o200k_base.tiktoken", timeout=60) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != sha:
        fail(14, f"o200k_base.tiktoken from {url} does not have the sha256 harmony expects")
    with open(target + ".tmp", "wb") as f:
        f.write(data)
    os.replace(target + ".tmp", target)


def main():
    repo, revision = E["GPTOSS_REPOSITORY"], E.get("GPTOSS_REVISION") or None
    parts, index = int(E["GPTOSS_PARTS"]), int(E["JOB_COMPLETION_INDEX"])
    marker = E["GPTOSS_MARKER_DIR"]
    where = f"{repo}@{revision or 'main'}"
    info = HfApi().model_info(repo, revision=revision, files_metadata=True)
    ignored = E["GPTOSS_IGNORE"].split(",")
    files = [s for s in info.siblings if not any(fnmatch.fnmatch(s.rfilename, p) for p in ignored)]
    mine = share(files, parts, index)
    started, done = time.monotonic(), 0
    for s in mine:
        path = hf_hub_download(repo, s.rfilename, revision=revision)
        # The branch may have moved since the listing: every part must hold the same commit.
        if f"/snapshots/{info.sha}/" not in path:
            fail(14, f"{where} moved to another commit during the download; pin model.revision")
        size = os.path.getsize(path)
        if s.lfs is not None and sha256(path) != s.lfs.sha256:
            os.remove(os.path.realpath(path))
            fail(14, f"{s.rfilename} of {where} does not match its sha256; retrying")
        if s.size is not None and size != s.size:
            os.remove(os.path.realpath(path))
            fail(14, f"{s.rfilename} of {where} has {size} bytes, not {s.size}; retrying")
        done += size
        print(f"part {index + 1}/{parts}: {s.rfilename} ({size} bytes) verified", flush=True)
    if index == 0 and E.get("GPTOSS_ENCODINGS_URL"):
        encodings(E["GPTOSS_ENCODINGS_URL"])
    seconds = round(time.monotonic() - started, 1)
    record = {"files": [s.rfilename for s in mine], "bytes": done, "seconds": seconds}
    atomic_write(os.path.join(marker, "parts", f"{parts}-{index}"), json.dumps(record))
    finished = [os.path.exists(os.path.join(marker, "parts", f"{parts}-{i}")) for i in range(parts)]
    if all(finished):
        summary = {"repository": repo, "revision": revision, "commit": info.sha, "parts": parts}
        atomic_write(os.path.join(marker, "complete"), json.dumps(summary))
        print(f"{where} complete (commit {info.sha})", flush=True)


try:
    main()
except GatedRepoError as error:
    fail(10, f"{E['GPTOSS_REPOSITORY']} is gated: accept its terms on Hugging Face with the "
         f"account of the token in spec.modelCache.hfTokenSecretRef ({error})")
except RevisionNotFoundError as error:
    fail(12, f"revision {E.get('GPTOSS_REVISION')} of {E['GPTOSS_REPOSITORY']} not found ({error})")
except RepositoryNotFoundError as error:
    fail(11, f"repository {E['GPTOSS_REPOSITORY']} not found, or private and the token has no "
         f"access ({error})")
except HfHubHTTPError as error:
    if status_of(error) in (401, 403):
        fail(10, f"access to {E['GPTOSS_REPOSITORY']} refused ({status_of(error)}): check "
             f"spec.modelCache.hfTokenSecretRef ({error})")
    fail(1, f"download failed: {error}")
except OSError as error:
    if error.errno == errno.ENOSPC:
        fail(13, f"the model cache claim is full: {error}; raise spec.modelCache.size")
    fail(1, f"download failed: {error}")
except Exception as error:  # network errors of the HTTP client, anything else: retried
    fail(1, f"download failed: {type(error).__name__}: {error}")
"""
# sha256 of o200k_base.tiktoken, as openai-harmony checks it (src/tiktoken_ext/public_encodings.rs).
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def weights_id(r: Resolved, spec: GptOssDeploymentSpec) -> str:
    """`repository@revision`, what one Job downloads and one marker certifies."""
    return f"{r.repository}@{spec.model.revision or 'main'}"


def marker_dir(r: Resolved, spec: GptOssDeploymentSpec) -> str:
    """Where the parts and the completion marker of these weights live on the claim (shared by
    every GptOssDeployment using the claim: keyed by repository and revision only)."""
    return f"{MARKER_ROOT}/{_digest(weights_id(r, spec), length=16)}"


def job_name(name: str, r: Resolved, spec: GptOssDeploymentSpec) -> str:
    """`<name>-weights-<hash of name, repository and revision>`: a new revision is a new Job; at
    most 59 characters, so the Job controller's job-name pod label stays valid."""
    stem = name[:NAME_MAX].rstrip("-.")
    return f"{stem}-weights-{_digest(name, weights_id(r, spec), length=10)}"


def marker_file(r: Resolved, spec: GptOssDeploymentSpec) -> str:
    return f"{marker_dir(r, spec)}/complete"


def parts(spec: GptOssDeploymentSpec) -> int:
    return spec.model_cache.download.parts or MODELS[spec.model.name].safetensors_shards


def _env(spec: GptOssDeploymentSpec, r: Resolved) -> list[dict[str, Any]]:
    download = spec.model_cache.download
    values = {
        f.HF_HOME: CACHE_MOUNT,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        # One line per file in the log, not a progress bar redrawn thousands of times.
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "GPTOSS_REPOSITORY": r.repository,
        "GPTOSS_REVISION": spec.model.revision or "",
        "GPTOSS_PARTS": str(parts(spec)),
        "GPTOSS_MARKER_DIR": marker_dir(r, spec),
        "GPTOSS_IGNORE": ",".join(IGNORED),
        "GPTOSS_ENCODINGS_URL": download.encodings_url or DEFAULT_ENCODINGS_URL,
        "GPTOSS_ENCODINGS_DIR": ENCODINGS_DIR,
        "GPTOSS_ENCODINGS_SHA256": O200K_SHA256,
        "PYTHONUNBUFFERED": "1",
    }
    if download.endpoint:
        values[f.HF_ENDPOINT] = download.endpoint
    if spec.security_context.run_as_user:
        values[f.HOME] = "/tmp"  # the image keeps HOME at /root, which another UID cannot write
    env = [{"name": k, "value": v} for k, v in values.items()]
    if spec.model_cache.hf_token_secret_ref is not None:
        env.append(secret_env(f.HF_TOKEN, spec.model_cache.hf_token_secret_ref))
    return sorted(env, key=lambda e: e["name"])


def _affinity(name: str, spec: GptOssDeploymentSpec, r: Resolved) -> dict[str, Any]:
    """Prefer nodes without GPUs (a preference: a cluster of GPU nodes only must still
    download). A ReadWriteOnce claim mounts on one node: every download pod goes where a pod of
    this GptOssDeployment already runs (the serving pod during an upgrade, else the first
    download pod), GPU nodes included."""
    avoid_gpus = [{"key": key, "operator": "DoesNotExist"} for key, _ in r.gpu_node_labels]
    affinity: dict[str, Any] = {}
    if avoid_gpus:
        affinity["nodeAffinity"] = {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": avoid_gpus}}
            ]
        }
    if _single_node(spec):
        affinity["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {INSTANCE_LABEL: name}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    return affinity


def _single_node(spec: GptOssDeploymentSpec) -> bool:
    cache = spec.model_cache
    return not cache.existing_claim_name and set(cache.access_modes) == {"ReadWriteOnce"}


def _pod_labels(name: str, spec: GptOssDeploymentSpec, r: Resolved) -> dict[str, str]:
    return {**spec.pod_labels, **labels(name, r, COMPONENT), "app.kubernetes.io/name": POD_APP_NAME}


def build_download_job(
    name: str, namespace: str, spec: GptOssDeploymentSpec, r: Resolved
) -> dict[str, Any] | None:
    """The download Job of the spec's repository and revision, or None without one."""
    if not r.download_job:
        return None
    download = spec.model_cache.download
    count = parts(spec)
    tolerations = list(download.tolerations)
    if _single_node(spec):
        tolerations.append({"key": r.resource_name, "operator": "Exists", "effect": "NoSchedule"})
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(spec),
        "containers": [
            {
                "name": CONTAINER,
                "image": r.image,
                "imagePullPolicy": spec.image_pull_policy,
                "command": ["python3", "-c", SCRIPT],
                "env": _env(spec, r),
                "resources": {
                    "requests": {"cpu": download.cpu, "memory": download.memory},
                    "limits": {"memory": download.memory},
                },
                "volumeMounts": [{"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT}],
                "securityContext": container_security_context(),
                # The script writes its one-line diagnosis there; a crash leaves the log tail.
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "volumes": [
            {
                "name": CACHE_VOLUME,
                "persistentVolumeClaim": {"claimName": cache_claim_name(name, spec)},
            }
        ],
    }
    affinity = _affinity(name, spec, r)
    if affinity:
        pod["affinity"] = affinity
    if tolerations:
        pod["tolerations"] = tolerations
    if download.node_selector:
        pod["nodeSelector"] = dict(sorted(download.node_selector.items()))
    template: dict[str, Any] = {"metadata": {"labels": _pod_labels(name, spec, r)}, "spec": pod}
    if spec.pod_annotations:
        template["metadata"]["annotations"] = dict(spec.pod_annotations)
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": count,
        "parallelism": min(download.parallelism, count),
        "backoffLimit": download.backoff_limit,
        "activeDeadlineSeconds": download.deadline_seconds
        or MODELS[spec.model.name].download_deadline_seconds,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": CONTAINER,
                        "operator": "In",
                        "values": list(PERMANENT_EXITS),
                    },
                },
                # An evicted or preempted pod is no failure of the download.
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": template,
    }
    digest = _digest(json.dumps(job_spec, sort_keys=True), length=16)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, r, spec),
            "namespace": namespace,
            "labels": labels(name, r, COMPONENT),
            "annotations": {JOB_HASH_ANNOTATION: digest, WEIGHTS_ANNOTATION: weights_id(r, spec)},
        },
        "spec": copy.deepcopy(job_spec),
    }


def weights_check_container(
    spec: GptOssDeploymentSpec, r: Resolved, security_context: dict[str, Any]
) -> dict[str, Any]:
    """The serving pod's init container: refuses to start vLLM (and so to load anything on the
    GPUs) unless the download Job's completion marker of these weights is on the claim."""
    marker = marker_file(r, spec)
    message = (
        f"weights {weights_id(r, spec)} are not complete on the model cache ({marker} missing):"
        " the download Job must succeed first"
    )
    return {
        "name": CHECK_CONTAINER,
        "image": r.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": ["sh", "-c", 'test -f "$0" || { echo "$1" >&2; exit 1; }', marker, message],
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"memory": "64Mi"},
        },
        "volumeMounts": [{"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT, "readOnly": True}],
        "securityContext": security_context,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
