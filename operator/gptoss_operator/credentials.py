"""Who the operator is to the apiserver: a pod's ServiceAccount, else the kubeconfig.

One reader for both clients, so Kopf's watches and the operator's own writes use the same
identity: Kopf gets it through its login handler, `kube.Kube` builds its connection from it.
It replaces the `kubernetes` package, whose import alone costs about 15 MiB of RSS (hundreds of
model classes the operator never uses). Supported, as in client-go: in-cluster configuration,
and kubeconfig users with a token, a token file, a client certificate, or an exec plugin.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kopf
import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXEC_TIMEOUT_SECONDS = 60


class CredentialsError(Exception):
    """No usable identity: the message says what is missing."""


def connection() -> kopf.ConnectionInfo:
    """In-cluster when running in a pod (KUBERNETES_SERVICE_HOST and the token file), else the
    kubeconfig (KUBECONFIG, or ~/.kube/config). Read afresh on every call: projected tokens
    rotate, and exec plugins hand out short-lived ones."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if host and (SERVICE_ACCOUNT / "token").exists():
        return in_cluster(host, os.environ.get("KUBERNETES_SERVICE_PORT", "443"))
    return from_kubeconfig(os.environ.get("KUBECONFIG") or "~/.kube/config")


def in_cluster(host: str, port: str) -> kopf.ConnectionInfo:
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return kopf.ConnectionInfo(
        server=f"https://{host}:{port}",
        ca_path=str(SERVICE_ACCOUNT / "ca.crt"),
        token=(SERVICE_ACCOUNT / "token").read_text().strip(),
        default_namespace=_read(SERVICE_ACCOUNT / "namespace"),
    )


def from_kubeconfig(paths: str) -> kopf.ConnectionInfo:
    """The current context of the kubeconfig files in `paths` (os.pathsep-separated; the first
    file that names an entry wins, as kubectl merges them)."""
    merged: dict[str, Any] = {"contexts": {}, "clusters": {}, "users": {}}
    current: str | None = None
    for path in (Path(p).expanduser() for p in paths.split(os.pathsep) if p):
        if not path.exists():
            continue
        config = yaml.safe_load(path.read_text()) or {}
        current = current or config.get("current-context")
        for section, entries in merged.items():
            for entry in config.get(section) or []:
                entries.setdefault(entry["name"], _relative_to(path.parent, entry))
    if not current or current not in merged["contexts"]:
        raise CredentialsError(f"no current context in the kubeconfig {paths!r}")
    context = merged["contexts"][current].get("context") or {}
    cluster = merged["clusters"].get(context.get("cluster"), {}).get("cluster")
    user = merged["users"].get(context.get("user"), {}).get("user") or {}
    if not cluster or not cluster.get("server"):
        raise CredentialsError(f"context {current!r} names no cluster with a server")
    issued = _exec(user["exec"]) if user.get("exec") else {}
    token = issued.get("token") or user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    return kopf.ConnectionInfo(
        server=cluster["server"],
        ca_path=cluster.get("certificate-authority"),
        ca_data=cluster.get("certificate-authority-data"),  # base64 or PEM: Kopf reads both
        insecure=cluster.get("insecure-skip-tls-verify"),
        certificate_path=user.get("client-certificate"),
        certificate_data=issued.get("clientCertificateData") or user.get("client-certificate-data"),
        private_key_path=user.get("client-key"),
        private_key_data=issued.get("clientKeyData") or user.get("client-key-data"),
        username=user.get("username"),
        password=user.get("password"),
        token=token,
        default_namespace=context.get("namespace"),
        expiration=_timestamp(issued.get("expirationTimestamp")),
    )


def _exec(plugin: dict[str, Any]) -> dict[str, Any]:
    """Run a kubeconfig exec plugin (client.authentication.k8s.io) and return its status."""
    env = {**os.environ, **{e["name"]: e["value"] for e in plugin.get("env") or []}}
    request = {"apiVersion": plugin["apiVersion"], "kind": "ExecCredential", "spec": {}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(request)
    try:
        done = subprocess.run(
            [plugin["command"], *(plugin.get("args") or [])],
            env=env,
            capture_output=True,
            check=True,
            timeout=EXEC_TIMEOUT_SECONDS,
        )
        status = json.loads(done.stdout)["status"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as error:
        raise CredentialsError(f"exec plugin {plugin['command']!r} failed: {error}") from None
    return dict(status)


def _relative_to(base: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """File references in a kubeconfig are relative to the file that names them."""
    for body in (entry.get("cluster"), entry.get("user")):
        for key in ("certificate-authority", "client-certificate", "client-key", "tokenFile"):
            if body and body.get(key):
                body[key] = str(base / Path(body[key]).expanduser())
    return entry


def _timestamp(text: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _read(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None
