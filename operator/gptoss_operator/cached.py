"""What the watch caches keep of each object: the fields the reconcile reads, nothing more.

At 1,000 resources the caches hold about 7,000 objects; kept whole (managedFields, pod specs,
ReplicaSet statuses, `kubectl apply`'s copy of the spec in an annotation) they are most of the
operator's memory. Pure: the handlers call it on every watch event, the controller on the
apiserver's dry-run answers, so both sides of a comparison are trimmed alike.
"""

from __future__ import annotations

from typing import Any

from gptoss_operator.render.resolve import SPEC_HASH_ANNOTATION

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Pods and ReplicaSets are read for diagnosis, readiness and rollback only.
_POD_META = ("name", "namespace", "uid", "resourceVersion", "deletionTimestamp")
_POD_STATUS = ("phase", "reason", "message")
_CONDITION = ("type", "status", "reason", "message", "lastTransitionTime")
_CONTAINER = ("name", "image", "state", "lastState", "started", "ready", "restartCount")


def cached_form(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as the caches keep it (a new dict; `obj` is not changed)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return _pod(obj)
    if kind == "ReplicaSet":
        return _replicaset(obj)
    kept = dict(obj)
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    kept["metadata"] = meta
    return kept


def _slim_meta(meta: dict[str, Any]) -> dict[str, Any]:
    slim = {k: meta[k] for k in _POD_META if k in meta}
    spec_hash = (meta.get("annotations") or {}).get(SPEC_HASH_ANNOTATION)
    if spec_hash:
        slim["annotations"] = {SPEC_HASH_ANNOTATION: spec_hash}
    return slim


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    slim: dict[str, Any] = {k: status[k] for k in _POD_STATUS if k in status}
    slim["conditions"] = [
        {k: c[k] for k in _CONDITION if k in c} for c in status.get("conditions") or ()
    ]
    for containers in ("initContainerStatuses", "containerStatuses"):
        if containers in status:
            slim[containers] = [{k: c[k] for k in _CONTAINER if k in c} for c in status[containers]]
    return {"kind": "Pod", "metadata": _slim_meta(obj.get("metadata") or {}), "status": slim}


def _replicaset(obj: dict[str, Any]) -> dict[str, Any]:
    # The pod template is what an automatic rollback restores; nothing reads the status.
    template = (obj.get("spec") or {}).get("template") or {}
    return {
        "kind": "ReplicaSet",
        "metadata": _slim_meta(obj.get("metadata") or {}),
        "spec": {"template": template},
    }
