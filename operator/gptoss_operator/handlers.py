"""Kopf glue, kept thin: watch caches (indexes) and watch events that request a reconcile.

Only low-level event handlers and indexes are used on purpose: they keep no state on the
objects (no annotations, no finalizers), so resuming after a restart writes nothing and the
operator being down never blocks a delete.
"""

from __future__ import annotations

from typing import Any

import kopf

from gptoss_operator.api import GROUP, PLURAL, VERSION
from gptoss_operator.controller import Controller
from gptoss_operator.kube import Kube
from gptoss_operator.render import MANAGED_BY

INSTANCE = "app.kubernetes.io/instance"
OURS = {"app.kubernetes.io/managed-by": MANAGED_BY, INSTANCE: kopf.PRESENT}
INDEXES = (
    "gptoss_by_key",
    "deployments_by_owner",
    "services_by_owner",
    "pdbs_by_owner",
    "netpols_by_owner",
    "replicasets_by_owner",
    "pods_by_owner",
)
CHILD_KINDS = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("", "v1", "persistentvolumeclaims"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("", "v1", "pods"),
)

controller: Controller | None = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global controller
    controller = Controller(Kube.from_environment())
    # The operator records its own Events, only on condition transitions.
    settings.posting.enabled = False
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.networking.error_backoffs = [1, 2, 5, 10, 20, 30]


def _owned(namespace: str | None, labels: kopf.Labels, body: kopf.Body) -> dict[Any, Any]:
    return {(namespace, labels[INSTANCE]): dict(body)}


@kopf.index(GROUP, VERSION, PLURAL)
def gptoss_by_key(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): dict(body)}


@kopf.index("apps", "v1", "deployments", labels=OURS)
def deployments_by_owner(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return _owned(namespace, labels, body)


@kopf.index("v1", "services", labels=OURS)
def services_by_owner(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return _owned(namespace, labels, body)


@kopf.index("policy", "v1", "poddisruptionbudgets", labels=OURS)
def pdbs_by_owner(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return _owned(namespace, labels, body)


@kopf.index("networking.k8s.io", "v1", "networkpolicies", labels=OURS)
def netpols_by_owner(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return _owned(namespace, labels, body)


@kopf.index("v1", "persistentvolumeclaims", labels=OURS)
def pvcs_by_owner(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return _owned(namespace, labels, body)


# Only watched where the Prometheus operator's CRDs exist; Kopf skips absent resources.
@kopf.index("monitoring.coreos.com", "v1", "podmonitors", labels=OURS)
def podmonitors_by_owner(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return _owned(namespace, labels, body)


@kopf.index("apps", "v1", "replicasets", labels=OURS)
def replicasets_by_owner(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    # Only the parts rollback needs: the pod template of each revision.
    return {
        (namespace, labels[INSTANCE]): {"metadata": dict(body.metadata), "spec": dict(body.spec)}
    }


@kopf.index("v1", "pods", labels=OURS)
def pods_by_owner(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    # Only the parts diagnosis reads, to keep the cache small.
    return {
        (namespace, labels[INSTANCE]): {
            "metadata": dict(body.metadata),
            "status": dict(body.status),
        }
    }


def _bind(kwargs: dict[str, Any]) -> Controller:
    assert controller is not None, "the startup handler creates the controller"
    controller.bind({name: kwargs[name] for name in INDEXES})
    return controller


@kopf.on.event(GROUP, VERSION, PLURAL)
async def gptoss_event(type: str, namespace: str, name: str, **kwargs: Any) -> None:
    ctl = _bind(kwargs)
    if type == "DELETED":
        ctl.forget((namespace, name))
    else:
        await ctl.request((namespace, name))


async def child_event(namespace: str, labels: kopf.Labels, **kwargs: Any) -> None:
    """A child or one of its pods changed: its GptOssDeployment may need a write."""
    await _bind(kwargs).request((namespace, labels[INSTANCE]))


for _group, _version, _plural in CHILD_KINDS:
    kopf.on.event(_group, _version, _plural, labels=OURS, id=f"{_plural}-event")(child_event)
