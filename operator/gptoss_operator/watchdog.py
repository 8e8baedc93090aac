"""Keeps the watch caches equal to the cluster, and says when they are not.

The operator's informers replace their cache whole on every list, but Kopf's indexes (the
add-ons' kinds) do not: after a watch reconnects (an apiserver restart, a 410 Gone after etcd
compaction, a network break) Kopf lists the objects again and indexes what it gets, but never
drops what the new list lacks, and has no hook on its re-lists (see docs/reliability.md). An
object deleted during the gap would stay as a ghost. And any watch can get stuck without an
error. So, for every cache:

- it asks the apiserver `/readyz` every few seconds; when the apiserver comes back after being
  unreachable, and every `resync_seconds` in any case, it lists every watched kind;
- a cached object the list lacks, although the list is at least as new as the object, is a
  ghost: the controller stops seeing it and reconciles its owner;
- an object the list shows newer than the cache, still newer at the next resync, means the
  watch is stuck: the liveness probe then fails, and the kubelet restarts the operator.

Lists are reads; a resync of a converged cluster writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from gptoss_operator import memory, metrics
from gptoss_operator.cached import forget_shared
from gptoss_operator.controller import Controller, Key
from gptoss_operator.informer import PAGE_SIZE
from gptoss_operator.kube import CUSTOM_RESOURCE, Kube, Resource
from gptoss_operator.reconcile import resource_version
from gptoss_operator.render import WATCHED_KINDS

log = logging.getLogger(__name__)
TRIM_SECONDS = 30.0
POLL_SECONDS = 2.0
Cached = dict[str, tuple[Key, int]]  # uid -> (owner key, resourceVersion)


@dataclass
class Watchdog:
    """The resync loop of one operator process."""

    controller: Controller
    kube: Kube
    label_selector: str
    namespaces: tuple[str, ...] = ()
    resync_seconds: float = 300.0
    # Objects a list showed newer than the cache: uid -> (resourceVersion, when first seen).
    behind: dict[str, tuple[int, float]] = field(default_factory=dict)
    stale: str | None = None
    resyncs: int = 0

    def _kinds(self) -> list[tuple[str, Resource, str]]:
        """(index name, resource, label selector) of everything the caches hold."""
        kinds = [("gptoss_by_key", CUSTOM_RESOURCE, "")]
        kinds += [
            (k.index, Resource(k.group, k.version, k.plural), self.label_selector)
            for k in WATCHED_KINDS
        ]
        return kinds

    def _snapshot(self) -> dict[str, Cached]:
        """The caches' uids and versions, read on the event loop that updates them."""
        snapshot: dict[str, Cached] = {}
        for index, _resource, _selector in self._kinds():
            cached: Cached = {}
            for key, store in self.controller.indexes.get(index, {}).items():
                for obj in store:
                    uid = obj.get("metadata", {}).get("uid")
                    if uid:
                        cached[uid] = (key, resource_version(obj))
            snapshot[index] = cached
        return snapshot

    def _list(self) -> dict[str, tuple[dict[str, int], int]] | None:
        """Every watched kind from the apiserver: index -> ({uid: version}, list version).
        None when a kind cannot be listed (not installed, or the apiserver went away)."""
        listed: dict[str, tuple[dict[str, int], int]] = {}
        for index, resource, selector in self._kinds():
            uids: dict[str, int] = {}
            version = -1
            for namespace in self.namespaces or (None,):
                try:
                    # Metadata only, a page at a time: at 1,000 resources a whole list of
                    # pods, parsed while the caches hold them too, grew the heap for good.
                    for page, page_version in self.kube.list_pages(
                        resource, namespace, selector, PAGE_SIZE, metadata_only=True
                    ):
                        uids |= {i["metadata"]["uid"]: resource_version(i) for i in page}
                        version = resource_version({"metadata": {"resourceVersion": page_version}})
                        del page
                except Exception as error:  # a missing optional CRD: skip that kind
                    if index == "gptoss_by_key":
                        log.debug("resync skipped: %s", error)
                        return None
                    break
            else:
                listed[index] = (uids, version)
        return listed

    def compare(
        self, cached: dict[str, Cached], listed: dict[str, tuple[dict[str, int], int]]
    ) -> set[Key]:
        """Mark ghosts, track cache lag; returns the resources whose view changed."""
        affected: set[Key] = set()
        now = time.monotonic()
        versions = {uid: v for cache in cached.values() for uid, (_k, v) in cache.items()}
        behind: dict[str, tuple[int, float]] = {}
        for index, (present, list_version) in listed.items():
            for uid, (key, version) in cached.get(index, {}).items():
                if uid not in present and 0 <= version <= list_version:
                    self.controller.ghost(uid, key)
                    affected.add(key)
            for uid, version in present.items():
                if versions.get(uid, -1) < version:
                    behind[uid] = (version, now)
        if affected:
            log.info(
                "resync: objects deleted while a watch was away left the caches of %d resources",
                len(affected),
            )
        # Still older in the cache than what the previous resync listed: the watch had all the
        # time between two resyncs to deliver that version, so it is stuck.
        lagging = [
            uid
            for uid, (version, _since) in self.behind.items()
            if 0 <= versions.get(uid, 0) < version
        ]
        self.stale = (
            f"{len(lagging)} objects changed in the cluster but not in the watch caches"
            if lagging
            else None
        )
        self.behind = behind
        return affected

    async def resync(self, everything: bool = True) -> None:
        """Compare the caches with a fresh list; reconcile the resources that had ghosts, and
        every resource after an outage (`everything`). A periodic resync of a healthy cluster
        reconciles nothing else: at 1,000 resources that would be a needless CPU burst."""
        cached = self._snapshot()
        listed = await asyncio.to_thread(self._list)
        if listed is None:
            return
        self.resyncs += 1
        affected = self.compare(cached, listed)
        metrics.resynced(len(affected))
        self.controller.request_soon(
            affected | set(self.controller.resources()) if everything else affected
        )

    async def run(self) -> None:
        """Poll readiness; resync on recovery and periodically. Runs until cancelled."""
        was_ready = True
        last = trimmed = time.monotonic()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if time.monotonic() - trimmed >= TRIM_SECONDS:
                forget_shared()  # let deleted objects' subtrees go
                memory.collect_if_busy()  # and deleted objects caught in reference cycles
                memory.trim()  # give back what a burst of events left free (memory.py)
                trimmed = time.monotonic()
            ready = await asyncio.to_thread(self.kube.ready)
            if not ready:
                if was_ready:
                    log.warning("the apiserver is not ready; resyncing when it is back")
                was_ready = False
                continue
            if not was_ready or time.monotonic() - last >= self.resync_seconds:
                recovered = not was_ready
                if recovered:
                    log.info("the apiserver is back; resyncing the watch caches")
                    metrics.apiserver_returned()
                was_ready = True
                last = time.monotonic()
                try:
                    await self.resync(everything=recovered)
                except Exception as error:  # never let the watchdog die
                    log.warning("resync failed: %s", error)
