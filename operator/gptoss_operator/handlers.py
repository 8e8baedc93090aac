"""Kopf glue, kept thin: the operator's start and stop, login, probes, and the add-ons' kinds.

The GptOssDeployments, their built-in children and pods are cached by the operator's own
informers (informer.py); Kopf watches the add-ons' CRDs and kinds (KEDA's ScaledObject, the
PodMonitor), which it follows as those CRDs come and go. Only low-level event handlers and
indexes are used on purpose: they keep no state on the objects (no annotations, no
finalizers), so resuming after a restart writes nothing and the operator being down never
blocks a delete.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from gptoss_operator import credentials, metrics
from gptoss_operator import settings as operator_settings
from gptoss_operator.api import GROUP, PLURAL
from gptoss_operator.cached import cached_form
from gptoss_operator.controller import Controller
from gptoss_operator.informer import Informers, owner_of, sources
from gptoss_operator.kube import Kube
from gptoss_operator.leader import LeaderElection
from gptoss_operator.render import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, WATCHED_KINDS
from gptoss_operator.watchdog import Watchdog

OURS: dict[str, Any] = {MANAGED_BY_LABEL: MANAGED_BY, INSTANCE_LABEL: kopf.PRESENT}
OURS_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}"
# Kopf watches the custom resource and the add-ons' kinds; the operator's informers the rest.
KOPF_KINDS = tuple(k for k in WATCHED_KINDS if not k.built_in)
INFORMED_KINDS = tuple(k for k in WATCHED_KINDS if k.built_in)
INDEXES = ("addon_crds", *(k.index for k in KOPF_KINDS))
ADDON_CRDS = frozenset(k.crd_name for k in WATCHED_KINDS if k.optional_api)
OWN_CRD = f"{PLURAL}.{GROUP}"

controller: Controller | None = None
informers: Informers | None = None
watchdog: Watchdog | None = None
election: LeaderElection | None = None
# Set when Kopf's indexes (the add-ons' kinds and CRDs) have listed: see crd_event.
kopf_listed: asyncio.Event | None = None
# Kopf lists every CRD of the cluster to find the add-ons' (hundreds, with large schemas, on
# some clusters): in pages, as the informers list (informer.PAGE_SIZE).
LIST_PAGE_SIZE = 100
# After an outage, the watches retry every 2 s (not Kopf's growing default backoff), so pending
# changes are acted on within seconds of the apiserver's return; ten minutes of retries.
ERROR_BACKOFFS = [0.5, 1.0, 1.0, *([2.0] * 300)]


class NoDiffBase(kopf.DiffBaseStorage):
    """Kopf builds and deep-copies a diff base ("essence") of every object on every event for
    on.create/on.update handlers; this operator has none (it compares with the caches), and at
    1,000 resources that copying was a quarter of Kopf's event processing."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """Kopf's watches use the identity the operator writes with (credentials.py); called again
    when the apiserver answers 401, so a rotated token is read afresh."""
    return credentials.connection()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    global controller, informers, watchdog, election, kopf_listed
    options = operator_settings.current()
    kube = Kube.from_environment()
    controller = Controller(kube)
    # The operator records its own Events, and only on condition transitions.
    settings.posting.enabled = False
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.chunk_size = LIST_PAGE_SIZE
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.networking.error_backoffs = ERROR_BACKOFFS
    # When a CRD is deleted, the apiserver ends its watches and Kopf reconnects after this
    # pause; its CRD observer must stop that kind's watcher first, or the reconnect's 404 ends
    # the whole operator (Kopf 1.45 treats it as fatal). Kopf's 0.1 s lost that race under load.
    settings.watching.reconnect_backoff = 1.0
    # Filter children and pods on the server: the operator never receives the cluster's other
    # pods and ReplicaSets (the `labels=` filters below would only drop them after the fact).
    for kind in KOPF_KINDS:
        settings.watching.label_selectors[kind.group, kind.version, kind.plural] = OURS_SELECTOR
    loop = asyncio.get_running_loop()
    kopf_listed = asyncio.Event()
    watched = sources(controller, INFORMED_KINDS, OURS_SELECTOR)
    informers = Informers(kube, watched, options.namespaces, loop)
    controller.inform(informers.indexes(), _caches_loaded)
    informers.start()
    watchdog = Watchdog(controller, kube, OURS_SELECTOR, options.namespaces, options.resync_seconds)
    memo.tasks = [loop.create_task(watchdog.run())]
    if options.lease is not None:
        election = LeaderElection(controller, kube, *options.lease)
        memo.tasks.append(loop.create_task(election.run()))
    metrics.watch(controller, election)
    if options.metrics is not None:
        metrics.serve(*options.metrics)


async def _caches_loaded() -> None:
    """What the workers wait for before their first reconcile: every cache listed once."""
    assert informers is not None, "the startup handler creates the informers"
    assert kopf_listed is not None, "the startup handler creates it"
    await informers.loaded()
    await kopf_listed.wait()


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for task in getattr(memo, "tasks", ()):
        task.cancel()
    if informers is not None:
        informers.stop()
    if controller is not None:
        controller.stop()
    if election is not None:
        try:
            await asyncio.to_thread(election.release)
        except Exception as error:  # the Lease then simply expires
            logging.getLogger(__name__).warning("could not release the Lease: %s", error)


@kopf.on.probe(id="watch-caches")
def watch_caches_fresh(**_: Any) -> str:
    """Liveness: fails while the watch caches are known to lag the cluster (stuck watches)."""
    if watchdog is not None and watchdog.stale:
        raise kopf.PermanentError(watchdog.stale)
    return "fresh"


@kopf.on.probe(id="leader")
def leading(**_: Any) -> bool:
    return election is None or election.leading


def _cached(body: kopf.Body) -> dict[str, Any]:
    return cached_form(dict(body))


def _owned(body: kopf.Body, **_: Any) -> object:
    return {owner_of(body): _cached(body)}


def _bind(kwargs: dict[str, Any]) -> Controller:
    assert controller is not None, "the startup handler creates the controller"
    controller.bind({name: kwargs[name] for name in INDEXES})
    return controller


@kopf.index(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    when=lambda name, **_: name in ADDON_CRDS,
)
def addon_crds(name: str, status: kopf.Status, **_: Any) -> object:
    """The add-ons' CRDs (KEDA's ScaledObject) and whether each is Established: a child of an
    add-on kind is rendered only then (a watch cache, so a restarted operator knows at once)."""
    conditions = status.get("conditions") or []
    return {
        name: any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
    }


@kopf.on.event(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    when=lambda name, **_: name in ADDON_CRDS or name == OWN_CRD,
)
async def crd_event(type: str | None, name: str, **kwargs: Any) -> None:
    """Kopf's caches are loaded, or an add-on was installed or removed while the operator runs.

    Kopf calls event handlers only once all its indexes have listed, and the operator's own
    CRD always exists: its listing (`type` None) tells the workers that the add-ons' caches
    are complete, and hands the controller Kopf's indexes. Before that, a first reconcile
    would plan without KEDA: no ScaledObject and a wrong "needs KEDA" Warning (a seeded
    converge run left a resource without its ScaledObject that way). An add-on's CRD
    changing later reconciles every resource, so those with autoscaling gain their
    ScaledObject, or report that KEDA is gone."""
    ctl = _bind(kwargs)
    if name == OWN_CRD:
        assert kopf_listed is not None, "the startup handler creates it"
        kopf_listed.set()
    elif type is not None:  # None: the listing at start-up, before the first reconcile
        ctl.request_soon(ctl.resources())


async def child_event(
    type: str, namespace: str | None, name: str, labels: kopf.Labels, body: kopf.Body, **kwargs: Any
) -> None:
    """A child or one of its pods changed: its GptOssDeployment may need a write."""
    deleted = name if type == "DELETED" else None
    _bind(kwargs).child_changed(str(body.get("kind", "")), owner_of(body), deleted)


for _kind in KOPF_KINDS:
    kopf.index(_kind.group, _kind.version, _kind.plural, labels=OURS, id=_kind.index)(_owned)
    if _kind.triggers:
        kopf.on.event(
            _kind.group, _kind.version, _kind.plural, labels=OURS, id=f"{_kind.plural}-event"
        )(child_event)
