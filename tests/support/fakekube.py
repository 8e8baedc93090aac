"""A Kube stand-in for the fast tier: an in-memory store that counts requests.

It plays only what the controller's own logic depends on (server-side apply storing a
normalised object, resourceVersions, dry-runs that store nothing, 422 refusals); what the real
apiserver does is tested on the test bed.
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

from gptoss_operator.kube import KubeError
from gptoss_operator.reconcile import Live, apply_merge_patch, key_of

Normalise = Callable[[dict[str, Any]], dict[str, Any]]


class FakeKube:
    """Children by (kind, name); `normalise` plays the apiserver's defaulting on each apply."""

    def __init__(self, cr: dict[str, Any], normalise: Normalise = lambda o: o) -> None:
        self.cr = copy.deepcopy(cr)
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.normalise = normalise
        self.calls: Counter[str] = Counter()
        self.events: list[tuple[str, str, str]] = []
        self.refuse: Callable[[dict[str, Any]], KubeError | None] = lambda m: None
        self._versions = itertools.count(100)
        self.missing: frozenset[str] = frozenset()  # add-on kinds not served (KEDA absent)
        self.terminating: set[str] = set()  # namespaces being deleted

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return obj

    def apply(self, manifest: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        self.calls["dry-run" if dry_run else f"apply {manifest['kind']}"] += 1
        refused = self.refuse(manifest)
        if refused:
            raise refused
        stored = self.normalise(copy.deepcopy(manifest))
        stored["metadata"]["resourceVersion"] = self.objects.get(
            key_of(manifest), {"metadata": {"resourceVersion": "1"}}
        )["metadata"]["resourceVersion"]
        if dry_run:
            return stored
        self.objects[key_of(manifest)] = self._stamp(stored)
        return copy.deepcopy(stored)

    def replace(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.calls[f"replace {manifest['kind']}"] += 1
        stored = self._stamp(self.normalise(copy.deepcopy(manifest)))
        self.objects[key_of(manifest)] = stored
        return copy.deepcopy(stored)

    def delete(self, manifest: dict[str, Any], propagation: str = "Background") -> None:
        self.calls[f"delete {manifest['kind']}"] += 1
        self.objects.pop(key_of(manifest), None)

    def namespace_terminating(self, namespace: str) -> bool:
        self.calls["get namespace"] += 1
        return namespace in self.terminating

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.calls["patch status"] += 1
        self.cr["status"] = apply_merge_patch(self.cr.get("status") or {}, status)
        return self._stamp(self.cr)

    def post_event(self, owner: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.calls["event"] += 1
        self.events.append((type_, reason, message))

    def live(self) -> Live:
        """What a watch cache that has caught up would hold."""
        return Live(
            cr=copy.deepcopy(self.cr),
            children=copy.deepcopy(list(self.objects.values())),
            unserved=self.missing,
        )

    def writes(self) -> int:
        return sum(n for call, n in self.calls.items() if call.split()[0] in WRITE_CALLS)


WRITE_CALLS = frozenset({"apply", "replace", "delete", "patch", "event"})
