"""Runs reconciles: one at a time per GptOssDeployment, coalesced, retried with backoff.

Watch events (the custom resource, its children, their pods) only *request* a reconcile. The
reconcile reads the watch caches (Kopf indexes, filled before any handler runs, so a restarted
operator sees the cluster as it is and writes nothing), plans, and carries the plan out.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gptoss_operator import diagnose
from gptoss_operator.kube import Kube, KubeError
from gptoss_operator.reconcile import Live, Plan, key_of, plan

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name) of a GptOssDeployment
MAX_BACKOFF_SECONDS = 60.0
CHILD_INDEXES = (
    "deployments_by_owner",
    "services_by_owner",
    "pdbs_by_owner",
    "netpols_by_owner",
    "pvcs_by_owner",
    "configmaps_by_owner",
    "podmonitors_by_owner",
)


@dataclass
class _KeyState:
    running: bool = False
    dirty: bool = False
    failures: int = 0
    retry: asyncio.TimerHandle | None = None
    # What this operator last wrote, with the resourceVersion the server answered. A watch cache
    # that still shows an older version has simply not caught up: not a reason to write again.
    applied: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    status: tuple[int, dict[str, Any]] | None = None


def _version(obj: dict[str, Any] | None) -> int:
    # resourceVersion is opaque by contract; every apiserver backed by etcd3 hands out its
    # increasing revision, which is all this staleness check needs. Unknown forms never skip.
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion", "-1"))
    except ValueError:
        return -1


class Controller:
    """Owns the per-object queueing; the watch caches are handed in by the Kopf handlers."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.indexes: Mapping[str, Mapping[Any, Any]] = {}
        self._keys: dict[Key, _KeyState] = {}

    def bind(self, indexes: Mapping[str, Mapping[Any, Any]]) -> None:
        self.indexes = indexes

    def forget(self, key: Key) -> None:
        state = self._keys.pop(key, None)
        if state and state.retry:
            state.retry.cancel()

    def child_deleted(self, key: Key, kind: str, name: str) -> None:
        """A child is gone: the next reconcile must apply it again, whatever it applied before."""
        state = self._keys.get(key)
        if state:
            state.applied.pop((kind, name), None)

    async def request(self, key: Key) -> None:
        """Reconcile `key` now, or right after the reconcile already running for it."""
        state = self._keys.setdefault(key, _KeyState())
        state.dirty = True
        if state.running:
            return
        state.running = True
        try:
            while state.dirty:
                state.dirty = False
                await self._attempt(key, state)
        finally:
            state.running = False

    async def _attempt(self, key: Key, state: _KeyState) -> None:
        if state.retry:
            state.retry.cancel()
            state.retry = None
        try:
            # Read the watch caches here, on the event loop that updates them; the blocking
            # API calls then run in a worker thread on that snapshot.
            live = self._live(key)
            if live is not None:
                await asyncio.to_thread(self._reconcile, key, state, live)
            state.failures = 0
        except Exception as error:  # an outage or a bug: log it, try again later, never crash
            state.failures += 1
            delay = min(2.0**state.failures, MAX_BACKOFF_SECONDS)
            log.warning("reconcile of %s/%s failed (%s); retrying in %.0fs", *key, error, delay)
            loop = asyncio.get_running_loop()
            state.retry = loop.call_later(delay, lambda: asyncio.ensure_future(self.request(key)))

    def _live(self, key: Key) -> Live | None:
        """A snapshot of the caches for one resource; None once it is deleted (garbage
        collection removes the children)."""
        cr = _one(self.indexes.get("gptoss_by_key", {}), key)
        if cr is None:
            return None
        children = [c for index in CHILD_INDEXES for c in _all(self.indexes.get(index, {}), key)]
        return Live(
            cr=cr,
            children=children,
            replicasets=_all(self.indexes.get("replicasets_by_owner", {}), key),
            pods=_all(self.indexes.get("pods_by_owner", {}), key),
        )

    def _reconcile(self, key: Key, state: _KeyState, live: Live) -> None:
        if state.status and _version(live.cr) < state.status[0]:
            # The watch has not delivered our last status write yet: plan from what we wrote.
            written = {k: v for k, v in state.status[1].items() if v is not None}
            live.cr = {**live.cr, "status": written}
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        result = plan(live, now)
        self._skip_caught_up(result, live, state)
        try:
            for manifest in result.apply:
                answer = self.kube.apply(manifest)
                state.applied[key_of(manifest)] = (_version(answer), manifest)
            for child in result.prune:
                self.kube.delete(child)
        except KubeError as error:
            if error.status == 0 or error.status >= 500 or error.status in (409, 429):
                raise
            # The apiserver refused what the spec renders to (an immutable field, a quota, a
            # missing permission): say so in status, and wait for the next change to try again.
            problem = diagnose.Problem(diagnose.APPLY_FAILED, str(error))
            result = plan(live, now, apply_failure=problem)
            self._skip_caught_up(result, live, state)
        if result.status is not None:
            answer = self.kube.patch_status(*key, result.status)
            state.status = (_version(answer), result.status)
        for type_, reason, message in result.events:
            try:
                self.kube.post_event(live.cr, type_, reason, message)
            except KubeError as error:
                log.warning("could not record event %s on %s/%s: %s", reason, *key, error)

    @staticmethod
    def _skip_caught_up(result: Plan, live: Live, state: _KeyState) -> None:
        live_versions = {key_of(c): _version(c) for c in live.children}

        def caught_up(manifest: dict[str, Any]) -> bool:
            seen = state.applied.get(key_of(manifest))
            if not seen or seen[1] != manifest:
                return False
            # Not in the cache yet (a create whose watch event is on its way; a deletion would
            # have dropped the record) or in the cache at an older version than our write.
            return live_versions.get(key_of(manifest), -1) < seen[0]

        result.apply = [m for m in result.apply if not caught_up(m)]


def _all(index: Mapping[Any, Any], key: Key) -> list[dict[str, Any]]:
    return [dict(v) for v in index.get(key, ())]


def _one(index: Mapping[Any, Any], key: Key) -> dict[str, Any] | None:
    values = _all(index, key)
    return values[0] if values else None
