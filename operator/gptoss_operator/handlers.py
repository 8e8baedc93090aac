"""Kopf glue, kept thin: watch caches (indexes) and watch events that request a reconcile.

Only low-level event handlers and indexes are used on purpose: they keep no state on the
objects (no annotations, no finalizers), so resuming after a restart writes nothing and the
operator being down never blocks a delete.
"""

from __future__ import annotations

from typing import Any

import kopf

from gptoss_operator.api import GROUP, PLURAL, VERSION
from gptoss_operator.controller import CHILD_INDEXES, Controller
from gptoss_operator.kube import Kube
from gptoss_operator.render import MANAGED_BY

INSTANCE = "app.kubernetes.io/instance"
OURS: dict[str, Any] = {
    "app.kubernetes.io/managed-by": MANAGED_BY,
    INSTANCE: kopf.PRESENT,
}
OURS_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY},{INSTANCE}"
# (index name, group, version, plural, whether its changes request a reconcile)
WATCHED: tuple[tuple[str, str, str, str, bool], ...] = (
    ("deployments_by_owner", "apps", "v1", "deployments", True),
    ("services_by_owner", "", "v1", "services", True),
    ("pvcs_by_owner", "", "v1", "persistentvolumeclaims", True),
    ("configmaps_by_owner", "", "v1", "configmaps", True),
    ("pdbs_by_owner", "policy", "v1", "poddisruptionbudgets", True),
    ("netpols_by_owner", "networking.k8s.io", "v1", "networkpolicies", True),
    # Only where the Prometheus operator's CRDs exist; Kopf skips resources it cannot find.
    ("podmonitors_by_owner", "monitoring.coreos.com", "v1", "podmonitors", False),
    ("replicasets_by_owner", "apps", "v1", "replicasets", False),
    ("pods_by_owner", "", "v1", "pods", True),
)
INDEXES = ("gptoss_by_key", *(w[0] for w in WATCHED))
assert set(CHILD_INDEXES) <= set(INDEXES)

controller: Controller | None = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global controller
    controller = Controller(Kube.from_environment())
    # The operator records its own Events, and only on condition transitions.
    settings.posting.enabled = False
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.networking.error_backoffs = [1, 2, 5, 10, 20, 30]
    # Filter children and pods on the server: the operator never receives the cluster's other
    # pods and ReplicaSets (the `labels=` filters below would only drop them after the fact).
    for _index, group, version, plural, _triggers in WATCHED:
        settings.watching.label_selectors[group, version, plural] = OURS_SELECTOR


@kopf.index(GROUP, VERSION, PLURAL)
def gptoss_by_key(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> object:
    return {(namespace, name): dict(body)}


def _owned(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> object:
    kept = dict(body)
    if kept.get("kind") == "Pod":
        kept.pop("spec", None)  # diagnosis reads pod status only; keep the cache small
    return {(namespace, labels[INSTANCE]): kept}


def _bind(kwargs: dict[str, Any]) -> Controller:
    assert controller is not None, "the startup handler creates the controller"
    controller.bind({name: kwargs[name] for name in INDEXES})
    return controller


@kopf.on.event(GROUP, VERSION, PLURAL)
async def gptoss_event(type: str, namespace: str | None, name: str, **kwargs: Any) -> None:
    ctl = _bind(kwargs)
    if type == "DELETED":
        ctl.forget((namespace or "", name))
    else:
        await ctl.request((namespace or "", name))


async def child_event(
    type: str, namespace: str | None, name: str, labels: kopf.Labels, body: kopf.Body, **kwargs: Any
) -> None:
    """A child or one of its pods changed: its GptOssDeployment may need a write."""
    ctl = _bind(kwargs)
    key = (namespace or "", labels[INSTANCE])
    if type == "DELETED":
        ctl.child_deleted(key, str(body.get("kind", "")), name)
    await ctl.request(key)


for _index, _group, _version, _plural, _triggers in WATCHED:
    kopf.index(_group, _version, _plural, labels=OURS, id=_index)(_owned)
    if _triggers:
        kopf.on.event(_group, _version, _plural, labels=OURS, id=f"{_plural}-event")(child_event)
