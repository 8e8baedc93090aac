"""The watch caches: list, then watch, one thread per kind (and per namespace watched).

The GptOssDeployments, their built-in children and the pods are cached here. Kopf watches only
the add-ons' kinds (it follows their CRDs coming and going). Through Kopf, each event cost
milliseconds of the event loop; worse, at a start Kopf holds every listed object until all of
them are indexed, and its wait for that wakes every waiting object on each new one. At 1,000
resources that was a 270 MiB peak that Python's memory arenas never gave back, and half a
minute of CPU before the first reconcile.

Here each page of a list and each watch event is trimmed to its cached form at once, in the
informer's thread, and handed to the event loop, which owns the caches (the controller reads
them there). As client-go's reflector does:
- list in pages and replace the cache whole, so an object deleted while the watch was away
  leaves no ghost, and the owners of whatever changed in between are reconciled;
- watch from the list's resourceVersion, with bookmarks, and again from the last version seen
  when the stream ends; list again on 410 Gone;
- after an error, wait (growing to 2 s) and go on; the watchdog's resyncs and liveness cover a
  watch that is stuck without an error.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gptoss_operator.api import GROUP, KIND, VERSION
from gptoss_operator.cached import cached_form
from gptoss_operator.controller import Controller
from gptoss_operator.kube import CUSTOM_RESOURCE, Kube, KubeError, Resource
from gptoss_operator.render import INSTANCE_LABEL, WatchedKind

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name) of the owning GptOssDeployment
Index = dict[Key, tuple[dict[str, Any], ...]]
# Objects per list page: the most a start holds parsed at once, per kind (client-go: 500).
PAGE_SIZE = 100
BACKOFF_SECONDS = (0.5, 1.0, 2.0)
# One list at a time across the informers: a start then holds one page parsed, not one per kind.
_LISTING = threading.Lock()


@dataclass(frozen=True)
class Source:
    """What one cache follows, and whom it tells: `on_change(key, deleted_name)` for each
    resource whose objects changed (`deleted_name` when one of them is gone)."""

    index: str  # the cache's name, as the controller reads it
    kind: str
    api_version: str
    resource: Resource
    selector: str
    key_of: Callable[[Mapping[str, Any]], Key]
    on_change: Callable[[Key, str | None], None]
    triggers: bool = True
    # The custom resource's cache: after the first list, every resource is reconciled once.
    announce_first_list: bool = False


def sources(controller: Controller, kinds: Iterable[WatchedKind], selector: str) -> list[Source]:
    """The GptOssDeployments, and each of `kinds` (labelled as ours, by owner)."""
    return [
        Source(
            "gptoss_by_key",
            KIND,
            f"{GROUP}/{VERSION}",
            CUSTOM_RESOURCE,
            "",
            _own_key,
            controller.resource_changed,
            announce_first_list=True,
        ),
        *(
            Source(
                k.index,
                k.kind,
                k.api_version,
                Resource(k.group, k.version, k.plural),
                selector,
                owner_of,
                functools.partial(controller.child_changed, k.kind),
                k.triggers,
            )
            for k in kinds
        ),
    ]


def _own_key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", str(meta.get("name", ""))


def owner_of(obj: Mapping[str, Any]) -> Key:
    """The GptOssDeployment an object belongs to: its controller owner reference, which another
    client's edit of the labels does not change (a child whose labels were edited leaves the
    label-selected watch with a DELETED event that must reach its owner); for pods, owned by a
    ReplicaSet or a Job, the instance label."""
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or ():
        ours = ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(GROUP)
        if ref.get("controller") and ours:
            return meta.get("namespace") or "", str(ref["name"])
    return meta.get("namespace") or "", str((meta.get("labels") or {}).get(INSTANCE_LABEL, ""))


class Informer:
    """One cache, of one namespace or cluster-wide. Its index is changed only on the event
    loop, and the source's `on_change` is called there."""

    def __init__(
        self, kube: Kube, source: Source, namespace: str | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.kube = kube
        self.source = source
        self.namespace = namespace
        self.loop = loop
        self.index: Index = {}
        self.listed = asyncio.Event()
        self._where: dict[str, tuple[Key, str, str]] = {}  # uid -> (key, version, name)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"informer-{source.resource.plural}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # --- in the informer's thread --------------------------------------------------------------
    def _run(self) -> None:
        version: str | None = None
        failures = 0
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                began = time.monotonic()
                version = self._watch(version)
                failures = 0
                if time.monotonic() - began < 1.0:  # ended at once: do not spin on it
                    self._stop.wait(BACKOFF_SECONDS[0])
            except GoneError:
                version = None  # the watch's version was compacted away: list again
            except Exception as error:  # an outage, a refusal: never let the thread die
                delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("watch of %s: %s; again in %.1fs", self.plural, error, delay)
                self._stop.wait(delay)

    def _list(self) -> str:
        objects: list[tuple[Key, dict[str, Any]]] = []
        version = ""
        with _LISTING:
            for page, page_version in self.kube.list_pages(
                self.source.resource, self.namespace, self.source.selector, PAGE_SIZE
            ):
                objects += (self._cached(o) for o in page)
                version = page_version
                del page
        self.loop.call_soon_threadsafe(self._replace, objects)
        return version

    def _watch(self, version: str) -> str:
        source = self.source
        for event in self.kube.watch(source.resource, self.namespace, source.selector, version):
            type_, obj = event.get("type"), event.get("object") or {}
            if type_ == "ERROR":
                if obj.get("code") == 410:
                    raise GoneError
                raise KubeError(f"watch {self.plural}", int(obj.get("code") or 0), str(obj))
            version = (obj.get("metadata") or {}).get("resourceVersion") or version
            if type_ in ("ADDED", "MODIFIED", "DELETED"):
                key, cached = self._cached(obj)
                self.loop.call_soon_threadsafe(self._event, type_ == "DELETED", key, cached)
            if self._stop.is_set():
                break
        return version

    # --- on the event loop ---------------------------------------------------------------------
    def _cached(self, obj: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
        """Its owner (read from the whole object: the cached form of a pod keeps no instance
        label) and its cached form."""
        return self.source.key_of(obj), cached_form(self._with_kind(obj))

    def _replace(self, objects: Iterable[tuple[Key, dict[str, Any]]]) -> None:
        """A fresh list: the cache becomes exactly it; owners of what changed are told."""
        first = not self.listed.is_set()
        before = self._where
        self._where = {}
        index: dict[Key, list[dict[str, Any]]] = {}
        for key, obj in objects:
            meta = obj["metadata"]
            index.setdefault(key, []).append(obj)
            self._where[meta["uid"]] = (key, meta.get("resourceVersion", ""), meta["name"])
        self.index = {key: tuple(values) for key, values in index.items()}
        self.listed.set()
        if first:
            if self.source.announce_first_list:  # the start: reconcile every resource
                for key in self.index:
                    self.source.on_change(key, None)
            return
        for uid, (key, version, _name) in self._where.items():
            if uid not in before or before[uid][1] != version:
                self._changed(key, None)
        for uid, (key, _version, name) in before.items():
            if uid not in self._where:
                self._changed(key, name)  # deleted while the watch was away

    def _event(self, deleted: bool, key: Key, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        uid = meta["uid"]
        previous = self._where.pop(uid, None)
        if previous is not None and (deleted or previous[0] != key):
            self._drop(previous[0], uid)
        if not deleted:
            # Updated in place: the order of a resource's objects (its pods) stays the order
            # they appeared in, so whatever reads "the first pod with a problem" stays put.
            objects = self.index.get(key, ())
            at = next((i for i, o in enumerate(objects) if o["metadata"]["uid"] == uid), None)
            if at is None:
                self.index[key] = (*objects, obj)
            else:
                self.index[key] = (*objects[:at], obj, *objects[at + 1 :])
            self._where[uid] = (key, meta.get("resourceVersion", ""), meta["name"])
        if previous is not None and previous[0] != key:
            self._changed(previous[0], meta["name"])  # it left that owner
        self._changed(key, meta["name"] if deleted else None)

    def _drop(self, key: Key, uid: str) -> None:
        kept = tuple(o for o in self.index.get(key, ()) if o["metadata"]["uid"] != uid)
        if kept:
            self.index[key] = kept
        else:
            self.index.pop(key, None)

    def _changed(self, key: Key, deleted_name: str | None) -> None:
        if self.source.triggers or deleted_name is not None:
            self.source.on_change(key, deleted_name)

    @property
    def plural(self) -> str:
        return self.source.resource.plural

    def _with_kind(self, obj: dict[str, Any]) -> dict[str, Any]:
        """List items come without kind and apiVersion; the caches' readers use both."""
        obj.setdefault("kind", self.source.kind)
        obj.setdefault("apiVersion", self.source.api_version)
        return obj


class GoneError(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class Informers:
    """Every informer of one operator: one per built-in kind, per namespace watched. The
    controller reads their indexes beside Kopf's; `loaded` is set once each has listed."""

    def __init__(
        self,
        kube: Kube,
        watched: Iterable[Source],
        namespaces: tuple[str, ...],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.by_index = {
            source.index: [Informer(kube, source, ns, loop) for ns in namespaces or (None,)]
            for source in watched
        }

    def start(self) -> None:
        for informers in self.by_index.values():
            for informer in informers:
                informer.start()

    def stop(self) -> None:
        for informers in self.by_index.values():
            for informer in informers:
                informer.stop()

    async def loaded(self) -> None:
        for informers in self.by_index.values():
            for informer in informers:
                await informer.listed.wait()

    def indexes(self) -> dict[str, Any]:
        """index name -> {owner: objects}, as the controller reads Kopf's indexes."""
        return {name: _Merged(informers) for name, informers in self.by_index.items()}


class _Merged:
    """The indexes of one kind's informers (one per namespace) read as one."""

    def __init__(self, informers: list[Informer]) -> None:
        self.informers = informers

    def get(self, key: Key, default: Any = ()) -> Any:
        for informer in self.informers:
            if key in informer.index:
                return informer.index[key]
        return default

    def items(self) -> Iterable[tuple[Key, tuple[dict[str, Any], ...]]]:
        for informer in self.informers:
            yield from list(informer.index.items())

    def __iter__(self) -> Any:
        for informer in self.informers:
            yield from list(informer.index)
