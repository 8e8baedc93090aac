"""The API-key middleware vLLM loads from a ConfigMap when `spec.api.apiKeySecretRef` is set.

vLLM 0.33's own key check guards only /v1, /v2, /inference and /cohere; the middleware in
`assets/gptoss_api_key.py` guards every path but the open ones. The ConfigMap carries code, never
the key: the key reaches the container only as a secretKeyRef (env VLLM_API_KEY).
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from typing import Any

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.render.resolve import Resolved, labels

MODULE = "gptoss_api_key"
MIDDLEWARE = f"{MODULE}.ApiKeyMiddleware"
"""The `--middleware` argument: module on PYTHONPATH, then the ASGI class."""
MOUNT = "/etc/gptoss/python"
VOLUME = "api-key-middleware"
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"


@functools.cache
def middleware_source() -> str:
    """The middleware module's text, shipped with the operator as package data."""
    return resources.files("gptoss_operator.render.assets").joinpath(f"{MODULE}.py").read_text()


def middleware_digest() -> str:
    """A short hash of the middleware, on the pod template so a new operator version rolls it."""
    return hashlib.sha256(middleware_source().encode()).hexdigest()[:16]


def config_map_name(name: str) -> str:
    return f"{name}-api-key-middleware"


def open_paths(spec: GptOssDeploymentSpec) -> list[str]:
    """Exact paths served without the key: the probes' path, and /metrics only when a PodMonitor
    scrapes it (Prometheus sends no key; the metrics reveal load, not prompts)."""
    paths = [HEALTH_PATH]
    if spec.pod_monitor.enabled:
        paths.append(METRICS_PATH)
    return paths


def build_auth_config_map(
    name: str, namespace: str, spec: GptOssDeploymentSpec, r: Resolved
) -> dict[str, Any] | None:
    """The ConfigMap holding the middleware module, only when an API key is configured."""
    if spec.api.api_key_secret_ref is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(name),
            "namespace": namespace,
            "labels": labels(name, r, "api-key-middleware"),
        },
        "data": {f"{MODULE}.py": middleware_source()},
    }
