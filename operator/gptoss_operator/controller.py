"""Runs reconciles: one at a time per GptOssDeployment, coalesced, retried with backoff.

Watch events (the custom resource, its children, their pods) only *request* a reconcile. The
reconcile reads the watch caches (informer.py, loaded in full before the first reconcile, so a
restarted operator sees the cluster as it is and writes nothing), plans, and carries the plan
out.

A write happens only for a difference the apiserver itself would see. The pure plan compares
the rendered children with the cached ones; where they differ although this operator already
wrote that exact manifest (or has no record of it, after a restart), a server-side dry-run asks
the apiserver what it would store, and the answer is remembered for that pair of objects. So
defaulting, normalisation (`matchLabels: {}` stored as `{}`), admission mutations and fields
others added cost one dry-run, not a write, and never a loop. The write budget is the safety net
for whatever is left.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gptoss_operator import diagnose, metrics
from gptoss_operator.budget import WRITE_LIMIT, WriteBudget
from gptoss_operator.cached import cached_form
from gptoss_operator.kube import REPLICASETS, Kube, KubeError
from gptoss_operator.reconcile import (
    Live,
    Plan,
    apply_merge_patch,
    first_difference,
    key_of,
    plan,
    resource_version,
    status_urgent,
    stored_content,
)
from gptoss_operator.render import (
    BY_KIND,
    CHILD_KINDS,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SPEC_HASH_ANNOTATION,
)
from gptoss_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name) of a GptOssDeployment
Child = tuple[str, str]  # (kind, name) of one of its children
MAX_BACKOFF_SECONDS = 60.0
# A burst of spec edits rolls out only its last template: a new pod template waits until the
# spec has been quiet this long (at most MAX_SETTLE_SECONDS after the burst began). On GPUs each
# rolled-out template is a vLLM restart of minutes; two seconds is cheap next to that.
SETTLE_SECONDS = 2.0
MAX_SETTLE_SECONDS = 10.0
# How long a namespace's "being deleted" answer is reused.
NAMESPACE_CHECK_SECONDS = 5.0
# Persistent failures (a 500 from the apiserver, a bug) show in status after this many tries.
FAILURES_BEFORE_STATUS = 3
TRANSIENT_STATUSES = frozenset({0, 409, 429, 503, 504})
# A status change that is only progress (the same phase, no condition flipping: "0/1 ready" to
# "starting") waits this long for the next one, and only the latest is written; so a resource
# coming up writes its status about twice, not once per step. Readiness, problems and spec
# edits are written at once.
PROGRESS_STATUS_DELAY = 5.0
# Reconciles run in this many threads. Each reconcile is a few HTTP calls in a row, so threads
# overlap waiting, not computing (the GIL); past about 8 the apiserver on the same machine
# becomes the bottleneck and its latency grows faster than throughput (docs/benchmarks.md).
WORKERS = 8
# Queue priorities (workqueue.py): a resource whose children may need writing (new, edited, a
# child deleted) goes before one whose pods merely changed, which waits at most STATUS_WAIT.
FIRST, CHILDREN, STATUS = 0, 1, 2


@dataclass
class _KeyState:
    running: bool = False
    queued: bool = False
    dirty: bool = False
    failures: int = 0
    timer: asyncio.TimerHandle | None = None
    timer_due: float = 0.0
    # What this operator last wrote (a digest of the manifest), with the resourceVersion the
    # server answered. A watch cache that still shows an older version has simply not caught
    # up: not a reason to write again.
    applied: dict[Child, tuple[int, str]] = field(default_factory=dict)
    status: tuple[int, dict[str, Any]] | None = None
    # Since when a progress-only status change has waited (see PROGRESS_STATUS_DELAY).
    status_pending_since: float | None = None
    # Fingerprints of (desired, live) pairs the apiserver's dry-run found already applied.
    verdicts: dict[Child, str] = field(default_factory=dict)
    budget: WriteBudget = field(default_factory=WriteBudget)
    loop: tuple[tuple[str, ...], diagnose.Problem] | None = None
    generation: int | None = None
    edited_at: float = float("-inf")
    burst_since: float = float("-inf")
    child_gone: bool = False


def _fingerprint(desired: dict[str, Any], live: dict[str, Any]) -> str:
    return _digest([desired, stored_content(live)])


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Controller:
    """Owns the per-object queueing; the watch caches are handed in by the Kopf handlers."""

    def __init__(
        self,
        kube: Kube,
        clock: Callable[[], float] = time.monotonic,
        settle_seconds: float = SETTLE_SECONDS,
        workers: int = WORKERS,
        progress_delay: float = PROGRESS_STATUS_DELAY,
    ) -> None:
        self.kube = kube
        self.clock = clock
        self.settle_seconds = settle_seconds
        self.progress_delay = progress_delay
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="reconcile")
        self._queue: WorkQueue[Key] | None = None
        self._worker_tasks: list[asyncio.Task[None]] = []
        self.indexes: Mapping[str, Mapping[Any, Any]] = {}
        # The operator's own informers' caches (informer.py), read beside Kopf's indexes, and
        # what the workers wait for before their first reconcile: caches loaded in full.
        self._informed: Mapping[str, Mapping[Any, Any]] = {}
        self._loaded: Callable[[], Awaitable[None]] | None = None
        self._keys: dict[Key, _KeyState] = {}
        self._namespaces: dict[str, tuple[bool, float]] = {}
        # Objects known deleted although a watch cache still holds them (see watchdog.py).
        self._ghosts: set[str] = set()
        # False while another replica holds the leader Lease: requests are kept, not run.
        self.active = True

    def ghost(self, uid: str, key: Key | None = None) -> None:
        """An object the watch caches still hold although it is gone (see watchdog.py). Its
        owner forgets what it applied: a child deleted while the watch was away sent no
        DELETED event, and must not look like a create whose event is still on its way."""
        self._ghosts.add(uid)
        state = self._keys.get(key) if key else None
        if state:
            state.applied.clear()
            state.verdicts.clear()
            state.child_gone = True

    def resources(self) -> list[Key]:
        """Every GptOssDeployment in the caches."""
        index = self.indexes.get("gptoss_by_key", {})
        return [k for k in list(index) if self._one(index, k) is not None]

    def request_soon(self, keys: set[Key] | list[Key]) -> None:
        """Request reconciles from outside a watch event (resync, leadership)."""
        for key in keys:
            self.notify(key)

    def queue_depth(self) -> tuple[int, int, int]:
        """Resources with a reconcile (running, requested and waiting, scheduled), for metrics."""
        states = list(self._keys.values())
        return (
            sum(s.running for s in states),
            sum(s.dirty for s in states),
            sum(s.timer is not None for s in states),
        )

    def bind(self, indexes: Mapping[str, Mapping[Any, Any]]) -> None:
        """Kopf's indexes, handed in with every Kopf event."""
        self.indexes = {**indexes, **self._informed}

    def inform(
        self, indexes: Mapping[str, Mapping[Any, Any]], loaded: Callable[[], Awaitable[None]]
    ) -> None:
        """The informers' caches, and how to wait until each has listed once."""
        self._informed = indexes
        self._loaded = loaded
        self.indexes = {**self.indexes, **indexes}

    def resource_changed(self, key: Key, deleted_name: str | None) -> None:
        """A GptOssDeployment was created, changed, or deleted (`deleted_name`)."""
        if deleted_name is not None:
            self.forget(key)
        else:
            self.notify(key)

    def child_changed(self, kind: str, key: Key, deleted_name: str | None) -> None:
        """An informer saw a child or pod of `key` change (`deleted_name`: one is gone)."""
        if deleted_name is not None:
            self.child_deleted(key, kind, deleted_name)
        self.notify(key)

    def forget(self, key: Key) -> None:
        state = self._keys.pop(key, None)
        if state and state.timer:
            state.timer.cancel()

    def child_deleted(self, key: Key, kind: str, name: str) -> None:
        """A child is gone: the next reconcile must apply it again, whatever it applied before,
        unless its namespace is being deleted."""
        state = self._keys.get(key)
        if state:
            state.applied.pop((kind, name), None)
            state.verdicts.pop((kind, name), None)
            state.child_gone = True

    def _state(self, key: Key) -> _KeyState:
        return self._keys.setdefault(key, _KeyState(budget=WriteBudget(clock=self.clock)))

    async def request(self, key: Key) -> None:
        """Queue a reconcile of `key` (see notify)."""
        self.notify(key)

    def notify(self, key: Key) -> None:
        """Queue a reconcile of `key`; one already queued or running for it absorbs this one
        (a running one goes round again). Returns at once: watch events never wait on the API."""
        state = self._state(key)
        state.dirty = True
        if state.running or state.queued or not self.active:
            return
        queue = self._start_workers()
        state.queued = True
        queue.put(key, status_only=self._priority(key, state) == STATUS)

    def _priority(self, key: Key, state: _KeyState) -> int:
        if state.generation is None:
            return FIRST
        cr = self._one(self.indexes.get("gptoss_by_key", {}), key)
        edited = cr is not None and cr["metadata"].get("generation") != state.generation
        return CHILDREN if edited or state.child_gone else STATUS

    def _start_workers(self) -> WorkQueue[Key]:
        if self._queue is None:
            self._queue = WorkQueue(self.clock)
            self._worker_tasks = [
                asyncio.ensure_future(self._work(self._queue)) for _ in range(self.workers)
            ]
        return self._queue

    async def _work(self, queue: WorkQueue[Key]) -> None:
        if self._loaded is not None:
            await self._loaded()  # a reconcile on half-loaded caches would write what exists
        while True:
            key = await queue.get()
            state = self._state(key)
            state.queued = False
            state.running = True
            try:
                while state.dirty and self.active:
                    state.dirty = False
                    await self._attempt(key, state)
            finally:
                state.running = False
                queue.task_done()

    async def idle(self) -> None:
        """Wait until every queued reconcile has run (tests, and shutting down cleanly)."""
        if self._queue is not None:
            await self._queue.join()

    def stop(self) -> None:
        for task in self._worker_tasks:
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _schedule(self, key: Key, state: _KeyState, delay: float) -> None:
        """Request `key` again in `delay` seconds (an earlier timer already set wins)."""
        due = self.clock() + delay
        if state.timer and state.timer_due <= due:
            return
        if state.timer:
            state.timer.cancel()
        loop = asyncio.get_running_loop()
        state.timer = loop.call_later(delay, self.notify, key)
        state.timer_due = due

    async def _attempt(self, key: Key, state: _KeyState) -> None:
        if state.timer:
            state.timer.cancel()
            state.timer = None
        # Read the watch caches here, on the event loop that updates them; the blocking API
        # calls then run in a worker thread on that snapshot.
        live = self._live(key)
        if live is None:
            # Deleted: a late event of a child (or a timer) asked for it; keep nothing of it.
            self.forget(key)
            return
        loop = asyncio.get_running_loop()
        try:
            wake = await loop.run_in_executor(self._pool, metrics.timed(self.reconcile), key, live)
            state.failures = 0
        except Exception as error:  # an outage or a bug: log it, try again later, never crash
            state.failures += 1
            delay = min(2.0**state.failures, MAX_BACKOFF_SECONDS)
            log.warning("reconcile of %s/%s failed (%s); retrying in %.0fs", *key, error, delay)
            if state.failures >= FAILURES_BEFORE_STATUS:
                await loop.run_in_executor(
                    self._pool, self._report_failure, key, state, live, error
                )
            wake = delay
        if wake:
            self._schedule(key, state, wake)

    def _live(self, key: Key) -> Live | None:
        """A snapshot of the caches for one resource; None once it is deleted (garbage
        collection removes the children)."""
        cr = self._one(self.indexes.get("gptoss_by_key", {}), key)
        if cr is None:
            return None
        children = [c for k in CHILD_KINDS for c in self._all(self.indexes.get(k.index, {}), key)]
        return Live(
            cr=cr,
            children=children,
            pods=self._all(self.indexes.get(BY_KIND["Pod"].index, {}), key),
            autoscalers=self._all(
                self.indexes.get(BY_KIND["HorizontalPodAutoscaler"].index, {}), key
            ),
            unserved=self._unserved(),
        )

    def _unserved(self) -> frozenset[str]:
        """Add-on child kinds whose CRD is not installed and Established (KEDA's ScaledObject),
        from the watch cache of those CRDs."""
        crds = self.indexes.get("addon_crds", {})
        return frozenset(
            k.kind for k in CHILD_KINDS if k.optional_api and not any(crds.get(k.crd_name, ()))
        )

    def _all(self, index: Mapping[Any, Any], key: Key) -> list[dict[str, Any]]:
        values = (dict(v) for v in index.get(key, ()))
        return [v for v in values if v.get("metadata", {}).get("uid") not in self._ghosts]

    def _one(self, index: Mapping[Any, Any], key: Key) -> dict[str, Any] | None:
        values = self._all(index, key)
        return values[0] if values else None

    # --- one reconcile, in a worker thread ------------------------------------------------------
    def reconcile(self, key: Key, live: Live) -> float | None:
        """Plan and write (blocking: run it in a worker thread); returns the seconds after which
        to look again, or None to wait for the next watch event."""
        state = self._state(key)
        self._track_generation(state, live.cr)
        if self._namespace_going(key[0], state, live):
            return None  # the namespace controller is removing everything: write nothing
        if state.status and resource_version(live.cr) < state.status[0]:
            # The watch has not delivered our last status write yet: plan from what we wrote.
            written = apply_merge_patch({}, state.status[1])
            live.cr = {**live.cr, "status": written}
        now = _now()
        wake: float | None = None
        if diagnose.may_roll_back(live.cr.get("status") or {}, live.children):
            live.replicasets = self._replicasets(key)
        if state.loop and not state.budget.blocked(state.loop[0]):
            state.loop = None  # the backoff is over: try writing again
        if not state.loop:
            result = plan(live, now)
            try:
                writes, checked = self._writes_needed(result, live, state)
                wake = self._hold_new_template(writes, live, state)
                self._write(state, live, writes, checked)
                for child in result.prune:
                    self.kube.delete(child)
                    log.info("deleted %s %s/%s", child["kind"], key[0], key_of(child)[1])
            except KubeError as error:
                if error.status in TRANSIENT_STATUSES or error.status >= 500:
                    raise
                if error.status == 403 and self._namespace_terminating(key[0]):
                    return None  # refused because the namespace is going: nothing to report
                # The apiserver refused what the spec renders to (an immutable field, a quota, a
                # missing permission): say so in status, and wait for the next change.
                log.warning("%s/%s: %s", *key, error)
                result = plan(
                    live, now, apply_failure=diagnose.Problem(diagnose.APPLY_FAILED, str(error))
                )
        if state.loop:
            # Backing off from a write loop (found now or earlier): no child writes until the
            # backoff ends, and the status says why.
            result = plan(live, now, apply_failure=state.loop[1])
            wake = state.budget.blocked(state.loop[0])
        later = self._write_status(key, state, live, result)
        state.child_gone = False
        return min((w for w in (wake, later) if w is not None), default=None)

    def _replicasets(self, key: Key) -> list[dict[str, Any]]:
        """The resource's ReplicaSets, listed when a rollback may need one's pod template."""
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={key[1]}"
        items, _ = self.kube.list_objects(REPLICASETS, key[0], selector)
        return [cached_form({**rs, "kind": "ReplicaSet"}) for rs in items]

    def _track_generation(self, state: _KeyState, cr: dict[str, Any]) -> None:
        generation = int(cr["metadata"].get("generation", 0))
        if state.generation is None:  # first sight (a restart): nothing to settle
            state.generation = generation
        elif generation != state.generation:
            now = self.clock()
            if now - state.edited_at > self.settle_seconds:
                state.burst_since = now
            state.edited_at = now
            state.generation = generation
            state.budget.reset()
            state.loop = None

    def _namespace_going(self, namespace: str, state: _KeyState, live: Live) -> bool:
        """Whether the namespace is being deleted. Asked only when something there is going
        away (a child deleted, a pod terminating), and remembered for a few seconds."""
        going = any(
            o.get("metadata", {}).get("deletionTimestamp") for o in [*live.children, *live.pods]
        )
        if not (state.child_gone or going):
            return False
        return self._namespace_terminating(namespace)

    def _namespace_terminating(self, namespace: str) -> bool:
        """The namespace's deletion, asked of the apiserver at most every few seconds. Also
        after a write refused with 403: a namespace being deleted refuses new objects even
        before anything in it shows a deletionTimestamp (a restarted operator's first look)."""
        cached = self._namespaces.get(namespace)
        if cached and self.clock() - cached[1] < NAMESPACE_CHECK_SECONDS:
            return cached[0]
        terminating = self.kube.namespace_terminating(namespace)
        self._namespaces[namespace] = (terminating, self.clock())
        return terminating

    def _writes_needed(
        self, result: Plan, live: Live, state: _KeyState
    ) -> tuple[list[dict[str, Any]], set[Child]]:
        """The planned applies the apiserver would store differently from what it holds, and
        the children whose apply it has just accepted in a dry-run."""
        self._skip_caught_up(result, live, state)
        live_by_key = {key_of(c): c for c in live.children}
        writes = []
        checked: set[Child] = set()
        for manifest in result.apply:
            child = key_of(manifest)
            current = live_by_key.get(child)
            last = state.applied.get(child)
            if current is None or (last is not None and last[1] != _digest(manifest)):
                writes.append(manifest)  # missing, or the spec changed since our last write
                continue
            fingerprint = _fingerprint(manifest, current)
            if state.verdicts.get(child) == fingerprint:
                continue
            try:
                stored = stored_content(cached_form(self.kube.apply(manifest, dry_run=True)))
            except KubeError as error:
                if not _restorable(error, manifest, current):
                    raise
                writes.append(manifest)  # refused over someone's edit: `_write` restores it
                continue
            checked.add(child)
            if stored == stored_content(current):
                state.verdicts[child] = fingerprint
                continue
            writes.append(manifest)
        return writes, checked

    def _hold_new_template(
        self, writes: list[dict[str, Any]], live: Live, state: _KeyState
    ) -> float | None:
        """Keep a new pod template back while the spec is still being edited; returns when to
        look again."""
        deployment = next((m for m in writes if m["kind"] == "Deployment"), None)
        current = next((c for c in live.children if c["kind"] == "Deployment"), None)
        if deployment is None or current is None:
            return None
        if diagnose.template_hash(deployment, SPEC_HASH_ANNOTATION) == diagnose.template_hash(
            current, SPEC_HASH_ANNOTATION
        ):
            return None
        now = self.clock()
        quiet = now - state.edited_at
        if quiet >= self.settle_seconds or now - state.burst_since >= MAX_SETTLE_SECONDS:
            return None
        writes.remove(deployment)
        return self.settle_seconds - quiet

    def _write(
        self, state: _KeyState, live: Live, writes: list[dict[str, Any]], checked: set[Child]
    ) -> None:
        """Apply `writes`, the Deployment last. With several changes to existing children, a
        dry-run of each (not `checked` already) comes first, so a refusal leaves every child as
        it was."""
        live_by_key = {key_of(c): c for c in live.children}
        writes.sort(key=lambda m: m["kind"] == "Deployment")
        if len(writes) > 1:
            for manifest in writes:
                current = live_by_key.get(key_of(manifest))
                if current is None or key_of(manifest) in checked:
                    continue
                try:
                    self.kube.apply(manifest, dry_run=True)
                except KubeError as error:
                    if not _restorable(error, manifest, current):
                        raise
        for manifest in writes:
            child = key_of(manifest)
            current = live_by_key.get(child)
            answer: dict[str, Any] | None
            try:
                answer = self.kube.apply(manifest)
            except KubeError as error:
                if current is None or not _restorable(error, manifest, current):
                    raise
                answer = self._restore(live.cr, manifest, current, error)
            what = first_difference(manifest, current) if current else None
            log.info(
                "%s %s %s/%s%s",
                "applied" if current else "created",
                *(child[0], manifest["metadata"]["namespace"], child[1]),
                f" ({what} differed)" if what else "",
            )
            state.verdicts.pop(child, None)
            if answer is not None:
                state.applied[child] = (resource_version(answer), _digest(manifest))
            # Counted per child and field: another client editing many fields once each is
            # drift to correct; one field differing again after every write is a loop.
            backoff = state.budget.record((*child, what or "(absent)"))
            if backoff:
                self._trip(state, child, what, backoff, manifest["metadata"]["namespace"])
                return

    def _trip(
        self, state: _KeyState, child: Child, field_: str | None, backoff: float, ns: str
    ) -> None:
        message = (
            f"{child[0]} {child[1]} was written more than {WRITE_LIMIT} times within a minute "
            f"without a spec change; {field_ or 'a field'} keeps differing from what the "
            "apiserver stores (another controller or an admission webhook may change it back)"
        )
        log.warning("%s/%s: %s; backing off %.0fs", ns, child[1], message, backoff)
        state.loop = (
            (*child, field_ or "(absent)"),
            diagnose.Problem(diagnose.WRITE_LOOP, message),
        )

    def _restore(
        self,
        cr: dict[str, Any],
        desired: dict[str, Any],
        current: dict[str, Any],
        refused: KubeError,
    ) -> dict[str, Any] | None:
        """Another client's edit made the apply unmergeable (a list key changed, an immutable
        field): replace the child whole, or delete it to be created again."""
        kind = BY_KIND[desired["kind"]]
        replacement = copy.deepcopy(desired)
        replacement["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        for name in kind.kept_on_replace:
            if name in (current.get("spec") or {}):
                replacement["spec"][name] = current["spec"][name]
        name = f"{kind.kind} {desired['metadata']['name']}"
        try:
            answer: dict[str, Any] | None = self.kube.replace(replacement)
            done = f"replaced {name}"
        except KubeError as error:
            if error.status != 422:
                raise
            # Orphan: the Deployment's ReplicaSets and pods keep serving and are adopted by
            # the Deployment created again in their place.
            self.kube.delete(desired, "Orphan" if kind.kind == "Deployment" else "Background")
            answer, done = None, f"deleted {name} to create it again"
        message = f"{done}: an edit by another client could not be applied over ({refused})"
        log.warning("%s/%s: %s", desired["metadata"]["namespace"], cr["metadata"]["name"], message)
        self._event(cr, "Warning", "DriftRestored", message)
        return answer

    def _write_status(
        self, key: Key, state: _KeyState, live: Live, result: Plan, urgent: bool = False
    ) -> float | None:
        """Write the planned status, or hold back a progress-only change for a little while;
        returns when to look again for a held one."""
        if result.status is None:
            state.status_pending_since = None
            return None
        previous = live.cr.get("status") or {}
        if not (urgent or result.events or status_urgent(previous, result.status)):
            now = self.clock()
            if state.status_pending_since is None:
                state.status_pending_since = now
            waited = now - state.status_pending_since
            if waited < self.progress_delay:
                return self.progress_delay - waited
        state.status_pending_since = None
        answer = self.kube.patch_status(*key, result.status)
        state.status = (resource_version(answer), result.status)
        before, after = previous.get("phase"), result.status.get("phase")
        if before != after:
            log.info("%s/%s: %s -> %s (%s)", *key, before, after, result.status.get("reason"))
        for type_, reason, message in result.events:
            self._event(live.cr, type_, reason, message)
        return None

    def _event(self, cr: dict[str, Any], type_: str, reason: str, message: str) -> None:
        try:
            self.kube.post_event(cr, type_, reason, message)
        except KubeError as error:
            meta = cr["metadata"]
            log.warning(
                "could not record event %s on %s/%s: %s",
                reason,
                meta["namespace"],
                meta["name"],
                error,
            )

    def _report_failure(self, key: Key, state: _KeyState, live: Live, error: Exception) -> None:
        """A reconcile keeps failing: say why in status (best effort; retries go on)."""
        if isinstance(error, KubeError):
            if error.status in TRANSIENT_STATUSES:
                return  # the apiserver is unreachable or busy; a status write would fail too
            problem = diagnose.Problem(diagnose.APPLY_FAILED, str(error))
        else:
            problem = diagnose.Problem(diagnose.RECONCILE_ERROR, f"{type(error).__name__}: {error}")
        try:
            failed = plan(live, _now(), apply_failure=problem)
            self._write_status(key, state, live, failed, urgent=True)
        except Exception as again:  # never let the report itself crash the operator
            log.warning("could not report the failure of %s/%s: %s", *key, again)

    @staticmethod
    def _skip_caught_up(result: Plan, live: Live, state: _KeyState) -> None:
        live_versions = {key_of(c): resource_version(c) for c in live.children}

        def caught_up(manifest: dict[str, Any]) -> bool:
            seen = state.applied.get(key_of(manifest))
            if not seen or seen[1] != _digest(manifest):
                return False
            # Not in the cache yet (a create whose watch event is on its way; a deletion would
            # have dropped the record) or in the cache at an older version than our write.
            return live_versions.get(key_of(manifest), -1) < seen[0]

        result.apply = [m for m in result.apply if not caught_up(m)]


def _restorable(error: KubeError, manifest: dict[str, Any], current: Any) -> bool:
    """An apply refused as invalid over an existing child: someone else's edit (a changed list
    key, an immutable field) that replacing or recreating the child undoes."""
    if error.status != 422 or current is None or not BY_KIND[manifest["kind"]].recreatable:
        return False
    # Only the apiserver's own field validation; a 422 from an admission policy or webhook
    # ("denied request") is a refusal to report, not an edit to undo.
    text = str(error)
    return "denied request" not in text and ("Duplicate value" in text or "immutable" in text)
