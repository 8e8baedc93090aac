"""Every call the operator makes to the Kubernetes API, and nothing else.

Children are written with server-side apply under one field manager; the custom resource's
status with a merge patch on its status subresource; Events through core/v1. Requests go over
one urllib3 pool shared by the worker threads; every failure becomes a `KubeError` here, in one
place.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kopf
import urllib3

from gptoss_operator import credentials, metrics
from gptoss_operator.api import GROUP, KIND, PLURAL, VERSION
from gptoss_operator.reconcile import resource_version
from gptoss_operator.render import WATCHED_KINDS

FIELD_MANAGER = "gptoss-operator"
# A connection per worker thread (controller.WORKERS), the watchdog and the leader election.
CONNECTIONS = 12
# A request the apiserver has not answered in a minute is a hung connection: the reconcile
# fails and is retried, instead of a worker waiting forever.
TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
# A watch lasts this long before the apiserver ends it and the informer watches again; a read
# waits that long plus a margin (bookmarks and events arrive in between).
WATCH_SECONDS = 300
WATCH_CHUNK = 64 * 1024
# A list of metadata alone: no spec, no status (a test bed pod's is half its bytes: the
# managedFields stay).
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
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

    def collection(self, namespace: str | None) -> str:
        """The path of every object of the kind: in `namespace`, or cluster-wide (None)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{scope}/{self.plural}"

    def path(self, namespace: str, name: str, subresource: str = "") -> str:
        tail = f"/{subresource}" if subresource else ""
        return f"{self.collection(namespace if self.namespaced else None)}/{name}{tail}"


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

    def __init__(self, login: Callable[[], kopf.ConnectionInfo]) -> None:
        self._login = login
        self._lock = threading.Lock()
        self._connect()

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster config when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube)."""
        return cls(credentials.connection)

    def _connect(self) -> None:
        info = self._login()
        self._server = info.server.rstrip("/")
        self._headers = info.as_http_headers()  # and Accept, per request (_send)
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=CONNECTIONS,
            block=False,
            ssl_context=info.as_ssl_context(),
            retries=False,
            timeout=TIMEOUT,
        )

    def _call(
        self,
        action: str,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
        accept: str = "application/json",
    ) -> dict[str, Any]:
        url = self._server + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = body if isinstance(body, bytes) or body is None else _body(body)
        response = self._send(action, method, url, data, content_type, accept)
        if response.status == 401:
            self._relogin()
            response = self._send(action, method, url, data, content_type, accept)
        if response.status >= 400:
            metrics.api_error(response.status)
            raise KubeError(action, response.status, _reason(response.data, response.reason))
        return json.loads(response.data) if response.data else {}

    def _relogin(self) -> None:
        """After a 401: a rotated token (projected or exec-issued) is read again."""
        with self._lock:
            self._connect()

    def _send(
        self,
        action: str,
        method: str,
        url: str,
        data: bytes | None,
        content_type: str,
        accept: str = "application/json",
        **options: Any,
    ) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request(
                method,
                url,
                body=data,
                headers={**self._headers, "Content-Type": content_type, "Accept": accept},
                **options,
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:  # refused, reset, TLS, timeout
            metrics.api_error(0)
            raise KubeError(action, 0, str(error)) from None

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
            body=manifest,
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
        items: list[dict[str, Any]] = []
        version = ""
        for page, page_version in self.list_pages(resource, namespace, label_selector):
            items += page
            version = page_version
        return items, resource_version({"metadata": {"resourceVersion": version}})

    def list_pages(
        self,
        resource: Resource,
        namespace: str | None,
        label_selector: str = "",
        limit: int = 0,
        metadata_only: bool = False,
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """A list in pages of `limit` objects (0: one page), each with the list's
        resourceVersion: a caller that handles one page before asking for the next never holds
        the parsed whole (1,000 pods are tens of MiB of Python objects). `metadata_only`: each
        item is the object's metadata alone (the apiserver's PartialObjectMetadata), for
        callers that need no spec or status."""
        accept = METADATA_ONLY if metadata_only else "application/json"
        query = [("labelSelector", label_selector)] if label_selector else []
        query += [("limit", str(limit))] if limit else []
        path = resource.collection(namespace)
        token = ""
        while True:
            answer = self._call(
                f"list {resource.plural}",
                "GET",
                path,
                query=query + ([("continue", token)] if token else []),
                accept=accept,
            )
            meta = answer.get("metadata") or {}
            yield list(answer.pop("items", None) or []), str(meta.get("resourceVersion", ""))
            token = meta.get("continue") or ""
            if not token:
                return

    def watch(
        self, resource: Resource, namespace: str | None, label_selector: str, version: str
    ) -> Iterator[dict[str, Any]]:
        """The watch events of a kind from `version` on, one parsed event at a time, until the
        apiserver ends the stream (after WATCH_SECONDS, or a restart). Bookmarks included."""
        query = [
            ("watch", "1"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(WATCH_SECONDS)),
        ] + ([("labelSelector", label_selector)] if label_selector else [])
        action = f"watch {resource.plural}"
        url = self._server + resource.collection(namespace) + "?" + urllib.parse.urlencode(query)
        response = self._send(
            action,
            "GET",
            url,
            None,
            "application/json",
            preload_content=False,
            timeout=urllib3.Timeout(connect=10.0, read=WATCH_SECONDS + 30.0),
        )
        try:
            if response.status == 401:
                self._relogin()  # the informer watches again with the new token
            if response.status >= 400:
                metrics.api_error(response.status)
                raise KubeError(action, response.status, _reason(response.read(), response.reason))
            pending = b""
            for chunk in response.stream(WATCH_CHUNK):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError) as error:  # reset, timeout mid-stream
            raise KubeError(action, 0, str(error)) from None
        finally:
            response.release_conn()

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
