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

from gptoss_operator import metrics
from gptoss_operator.api import GROUP, KIND, PLURAL, VERSION
from gptoss_operator.reconcile import resource_version
from gptoss_operator.render import WATCHED_KINDS

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


# The GptOssDeployment itself, and every kind from the one table of watched kinds.
CUSTOM_RESOURCE = Resource(GROUP, VERSION, PLURAL)
RESOURCES: dict[tuple[str, str], Resource] = {
    (f"{GROUP}/{VERSION}", KIND): CUSTOM_RESOURCE,
    **{(k.api_version, k.kind): Resource(k.group, k.version, k.plural) for k in WATCHED_KINDS},
}


LEASES = Resource("coordination.k8s.io", "v1", "leases")
REPLICASETS = Resource("apps", "v1", "replicasets")


def resource_of(manifest: dict[str, Any]) -> Resource:
    return RESOURCES[(manifest["apiVersion"], manifest["kind"])]


def _body(obj: Any) -> bytes:
    # Not ensure_ascii: its \ud83d-style surrogate escapes for characters outside the Basic
    # Multilingual Plane are refused by the apiserver's YAML decoder (apply-patch+yaml).
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


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
            metrics.api_error(error.status or 0)
            raise KubeError(action, error.status or 0, _reason(error.body, error.reason)) from None
        except OSError as error:  # refused, reset, TLS: the apiserver is not reachable
            metrics.api_error(0)
            raise KubeError(action, 0, str(error)) from None
        if response.status >= 400:
            metrics.api_error(response.status)
            raise KubeError(action, response.status, _reason(data, response.reason))
        return json.loads(data) if data else {}

    def apply(self, manifest: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply `manifest`, taking over fields others changed (drift is reverted).
        With `dry_run`, the apiserver answers what it would store and stores nothing."""
        meta = manifest["metadata"]
        path = resource_of(manifest).path(meta["namespace"], meta["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        answer = self._call(
            f"apply {manifest['kind']} {meta['namespace']}/{meta['name']}",
            "PATCH",
            path,
            body=_body(manifest),
            content_type="application/apply-patch+yaml",
            query=query + ([("dryRun", "All")] if dry_run else []),
        )
        metrics.dry_run(manifest["kind"]) if dry_run else metrics.wrote(manifest["kind"], "apply")
        return answer

    def replace(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Replace a child whole (PUT): for edits by others that an apply cannot merge over.
        `manifest` carries the live resourceVersion, so a concurrent change makes this fail."""
        meta = manifest["metadata"]
        answer = self._call(
            f"replace {manifest['kind']} {meta['namespace']}/{meta['name']}",
            "PUT",
            resource_of(manifest).path(meta["namespace"], meta["name"]),
            body=manifest,  # JSON: its decoder reads surrogate-pair escapes correctly
            query=[("fieldManager", FIELD_MANAGER)],
        )
        metrics.wrote(manifest["kind"], "replace")
        return answer

    def delete(self, manifest: dict[str, Any], propagation: str = "Background") -> None:
        """Delete a child; already gone is fine. `Orphan` keeps its dependents (pods)."""
        meta = manifest["metadata"]
        path = resource_of(manifest).path(meta["namespace"], meta["name"])
        try:
            self._call(
                f"delete {manifest['kind']} {meta['namespace']}/{meta['name']}",
                "DELETE",
                path,
                body={"propagationPolicy": propagation},
            )
            metrics.wrote(manifest["kind"], "delete")
        except KubeError as error:
            if error.status != 404:
                raise

    def ready(self) -> bool:
        """Whether the apiserver answers /readyz (open to every authenticated user)."""
        try:
            self._call("readyz", "GET", "/readyz")
        except KubeError:
            return False
        except ValueError:  # /readyz answers "ok", not JSON
            return True
        return True

    def list_objects(
        self, resource: Resource, namespace: str | None, label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], int]:
        """Every object of a kind (in one namespace, or cluster-wide), and the list's
        resourceVersion (-1 when it is not a number)."""
        base = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
        scope = f"/namespaces/{namespace}" if namespace else ""
        query = [("labelSelector", label_selector)] if label_selector else []
        answer = self._call(
            f"list {resource.plural}", "GET", f"{base}{scope}/{resource.plural}", query=query
        )
        return list(answer.get("items") or []), resource_version(answer)

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call(f"get lease {name}", "GET", LEASES.path(namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    def write_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease, or update it at the resourceVersion read (409 when another
        replica changed it meanwhile)."""
        meta = lease["metadata"]
        if "resourceVersion" in meta:
            verb, answer = (
                "update",
                self._call(
                    f"renew lease {meta['name']}",
                    "PUT",
                    LEASES.path(meta["namespace"], meta["name"]),
                    body=lease,
                ),
            )
        else:
            path = LEASES.path(meta["namespace"], "").rstrip("/")
            verb, answer = (
                "create",
                self._call(f"create lease {meta['name']}", "POST", path, body=lease),
            )
        metrics.wrote("Lease", verb)
        return answer

    def namespace_terminating(self, namespace: str) -> bool:
        """Whether `namespace` is being deleted (or gone): writes there would only be refused."""
        try:
            ns = self._call(f"get namespace {namespace}", "GET", f"/api/v1/namespaces/{namespace}")
        except KubeError as error:
            if error.status == 404:
                return True
            if error.status == 403:  # no permission to read namespaces: assume it is not
                return False
            raise
        return bool(ns.get("metadata", {}).get("deletionTimestamp"))

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the GptOssDeployment's status subresource (None values remove fields)."""
        path = CUSTOM_RESOURCE.path(namespace, name, "status")
        answer = self._call(
            f"patch status {namespace}/{name}",
            "PATCH",
            path,
            body={"status": status},
            content_type="application/merge-patch+json",
        )
        metrics.wrote(f"{KIND}/status", "patch")
        return answer

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
        metrics.wrote("Event", "create")


def _reason(body: Any, fallback: Any) -> str:
    """The apiserver's own message from a Status body, else the HTTP reason."""
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(fallback)
