"""What the watch caches keep of each object: the fields the reconcile reads, nothing more,
and identical parts stored once.

At 1,000 resources the caches hold about 6,000 objects; kept whole (managedFields, pod specs,
ReplicaSet statuses, `kubectl apply`'s copy of the spec in an annotation) they were most of the
operator's memory (about 68 KiB per resource). Trimmed, and with the specs' identical subtrees
shared (every vLLM pod template repeats the same probes, security context, volumes; a
ReplicaSet repeats its Deployment's template), about 20 KiB. Cached objects are therefore
read-only: code that changes one copies it first (the reconcile does).

`cached_form` is applied by the handlers on every watch event and by the controller to the
apiserver's dry-run answers, so both sides of a comparison are trimmed alike.
"""

from __future__ import annotations

import sys
from typing import Any

from gptoss_operator.render.resolve import SPEC_HASH_ANNOTATION
from gptoss_operator.weights import COMPONENT_LABEL, JOB_NAME_LABEL

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Pods and ReplicaSets are read for diagnosis, readiness and rollback only.
_POD_META = ("name", "namespace", "uid", "resourceVersion", "deletionTimestamp")
_POD_STATUS = ("phase", "reason", "message")
_CONDITION = ("type", "status", "reason", "message", "lastTransitionTime")
_CONTAINER = ("name", "image", "state", "lastState", "started", "ready", "restartCount")
# Download pods are told apart from serving pods, and matched to their Job, by these labels
# (weights.read_job; the Job itself is kept whole).
POD_LABELS = (COMPONENT_LABEL, JOB_NAME_LABEL)


def cached_form(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as the caches keep it (a new dict; `obj` is not changed)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return _pod(obj)
    if kind == "ReplicaSet":
        return _replicaset(obj)
    # Everything rebuilt, nothing aliased: a watch event's parsed body must be freed whole
    # (a kept reference into it keeps every string of it alive).
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    kept = {k: share(v) if k == "spec" else fresh(v) for k, v in obj.items() if k != "metadata"}
    kept["metadata"] = {k: share(v) if k in _SHARED_META else fresh(v) for k, v in meta.items()}
    return kept


_SHARED_META = frozenset({"labels", "annotations", "ownerReferences"})


def fresh(node: Any) -> Any:
    """A copy of `node` sharing nothing with it (short strings interned)."""
    if isinstance(node, dict):
        return {sys.intern(k): fresh(v) for k, v in node.items()}
    if isinstance(node, list):
        return [fresh(v) for v in node]
    if isinstance(node, str):
        return sys.intern(node) if len(node) <= 256 else node[:]
    return node


# Hash-consing of spec subtrees: a table from a node's shape (its keys and the identities of
# its already-shared children) to the one shared instance. Identities are checked on a hit, so
# a hash collision only costs a missed share. The table is emptied when it grows past its
# bound (shared objects stay valid; only sharing with later objects restarts).
_SHARED: dict[int, Any] = {}
SHARED_LIMIT = 100_000


def share(node: Any) -> Any:
    """`node` with every dict, list and short string replaced by the shared equal one."""
    if isinstance(node, dict):
        items = [(sys.intern(k), share(v)) for k, v in node.items()]
        key = hash((0, *((k, id(v)) for k, v in items)))
        hit = _SHARED.get(key)
        if (
            type(hit) is dict
            and len(hit) == len(items)
            and all(k in hit and hit[k] is v for k, v in items)
        ):
            return hit
        fresh: Any = dict(items)
    elif isinstance(node, list):
        values = [share(v) for v in node]
        key = hash((1, *(id(v) for v in values)))
        hit = _SHARED.get(key)
        if (
            type(hit) is list
            and len(hit) == len(values)
            and all(a is b for a, b in zip(hit, values, strict=True))
        ):
            return hit
        fresh = values
    elif isinstance(node, str):
        return sys.intern(node) if len(node) <= 256 else node
    else:
        return node
    if hit is None:
        if len(_SHARED) >= SHARED_LIMIT:
            _SHARED.clear()
        _SHARED[key] = fresh
    return fresh


def forget_shared() -> None:
    """Empty the sharing table: it holds the subtrees of every object cached since the last
    time, deleted ones included (a namespace of 1,000 resources deleted left them all). Cached
    objects stay valid and shared among themselves; the next ones share with each other."""
    _SHARED.clear()


def _slim_meta(meta: dict[str, Any]) -> dict[str, Any]:
    slim = {k: meta[k] for k in _POD_META if k in meta}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k in POD_LABELS}
    if labels:
        slim["labels"] = share(labels)
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
    return {
        "kind": "Pod",
        "metadata": fresh(_slim_meta(obj.get("metadata") or {})),
        "status": fresh(slim),
    }


def _replicaset(obj: dict[str, Any]) -> dict[str, Any]:
    # The pod template is what an automatic rollback restores; nothing reads the status.
    template = (obj.get("spec") or {}).get("template") or {}
    return {
        "kind": "ReplicaSet",
        "metadata": fresh(_slim_meta(obj.get("metadata") or {})),
        "spec": {"template": share(template)},
    }
