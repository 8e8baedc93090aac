"""Every call the operator makes to the Kubernetes API, and nothing else.

Children are written with server-side apply under one field manager; the custom resource's
status with a merge patch on its status subresource; Events through core/v1. An `ApiException`
becomes a `KubeError` here, in one place.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import kubernetes
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from gptoss_operator.api import GROUP, KIND, PLURAL, VERSION

FIELD_MANAGER = "gptoss-operator"
log = logging.getLogger(__name__)


class KubeError(Exception):
    """An API call failed; `status` is the HTTP code (0 when the server was not reached)."""

    def __init__(self, action: str, status: int, reason: str) -> None:
        super().__init__(f"{action}: {status} {reason}")
        self.status = status


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str, name: str, subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        tail = f"/{subresource}" if subresource else ""
        return f"{base}{scope}/{self.plural}/{name}{tail}"


# The kinds the operator writes; keys are (apiVersion, kind) as they appear in manifests.
RESOURCES: dict[tuple[str, str], Resource] = {
    ("apps/v1", "Deployment"): Resource("apps", "v1", "deployments"),
    ("v1", "Service"): Resource("", "v1", "services"),
    ("v1", "PersistentVolumeClaim"): Resource("", "v1", "persistentvolumeclaims"),
    ("v1", "ConfigMap"): Resource("", "v1", "configmaps"),
    ("policy/v1", "PodDisruptionBudget"): Resource("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io/v1", "NetworkPolicy"): Resource(
        "networking.k8s.io", "v1", "networkpolicies"
    ),
    ("monitoring.coreos.com/v1", "PodMonitor"): Resource(
        "monitoring.coreos.com", "v1", "podmonitors"
    ),
    (f"{GROUP}/{VERSION}", KIND): Resource(GROUP, VERSION, PLURAL),
}


def resource_of(manifest: dict[str, Any]) -> Resource:
    return RESOURCES[(manifest["apiVersion"], manifest["kind"])]


class Kube:
    """A thin, synchronous client: call it from a worker thread, never from the event loop."""

    def __init__(self, api_client: ApiClient) -> None:
        self.api = api_client

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster config when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube)."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        return cls(ApiClient())

    def _call(
        self,
        action: str,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        request = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*request)
            data = response.read()  # type: ignore[no-untyped-call]
        except ApiException as error:
            raise KubeError(action, error.status or 0, _reason(error.body, error.reason)) from None
        except OSError as error:  # refused, reset, TLS: the apiserver is not reachable
            raise KubeError(action, 0, str(error)) from None
        if response.status >= 400:
            raise KubeError(action, response.status, _reason(data, response.reason))
        return json.loads(data) if data else {}

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply `manifest`, taking over fields others changed (drift is reverted)."""
        meta = manifest["metadata"]
        path = resource_of(manifest).path(meta["namespace"], meta["name"])
        return self._call(
            f"apply {manifest['kind']} {meta['namespace']}/{meta['name']}",
            "PATCH",
            path,
            body=json.dumps(manifest),
            content_type="application/apply-patch+yaml",
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        )

    def delete(self, manifest: dict[str, Any]) -> None:
        """Delete a child; already gone is fine."""
        meta = manifest["metadata"]
        path = resource_of(manifest).path(meta["namespace"], meta["name"])
        try:
            self._call(
                f"delete {manifest['kind']} {meta['namespace']}/{meta['name']}",
                "DELETE",
                path,
                body={"propagationPolicy": "Background"},
            )
        except KubeError as error:
            if error.status != 404:
                raise

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the GptOssDeployment's status subresource (None values remove fields)."""
        path = RESOURCES[(f"{GROUP}/{VERSION}", KIND)].path(namespace, name, "status")
        return self._call(
            f"patch status {namespace}/{name}",
            "PATCH",
            path,
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    def post_event(self, owner: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record a core/v1 Event on the GptOssDeployment (shown by `kubectl describe`)."""
        meta = owner["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:12]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
        }
        self._call(
            f"post event {reason}",
            "POST",
            f"/api/v1/namespaces/{meta['namespace']}/events",
            body=event,
        )


def _reason(body: Any, fallback: Any) -> str:
    """The apiserver's own message from a Status body, else the HTTP reason."""
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(fallback)
