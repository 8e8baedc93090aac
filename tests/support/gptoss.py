"""GptOssDeployment helpers for end-to-end tests: build, apply, read status, wait on conditions."""

from __future__ import annotations

import json
from typing import Any

from support.testbed import Testbed, wait_until

API_VERSION = "gptoss.dev/v1alpha1"


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    """A small GptOssDeployment: 20b on the H100 nodes (16 GPUs) unless `spec` says otherwise."""
    body = {"model": {"name": "gpt-oss-20b"}, "accelerator": {"profile": "H100-80GB"}} | spec
    return {
        "apiVersion": API_VERSION,
        "kind": "GptOssDeployment",
        "metadata": {"name": name},
        "spec": body,
    }


def apply(testbed: Testbed, namespace: str, obj: dict[str, Any], check: bool = True) -> Any:
    return testbed.apply(namespace, obj, check=check)


def get(testbed: Testbed, namespace: str, name: str) -> dict[str, Any]:
    return testbed.get("-n", namespace, "gptossdeployment", name)  # type: ignore[no-any-return]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return {}


def wait_condition(
    testbed: Testbed,
    namespace: str,
    name: str,
    type_: str,
    status: str = "True",
    reason: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """Wait until condition `type_` has `status` (and `reason`); return the whole object."""

    def probe() -> dict[str, Any] | None:
        obj = get(testbed, namespace, name)
        c = condition(obj, type_)
        ok = c.get("status") == status and (reason is None or c.get("reason") == reason)
        return obj if ok else None

    return wait_until(probe, timeout, f"{name}: {type_}={status} {reason or ''}")


def events(testbed: Testbed, namespace: str, name: str) -> list[dict[str, Any]]:
    """Events recorded on the GptOssDeployment, oldest first."""
    items = testbed.get(
        "-n",
        namespace,
        "events",
        f"--field-selector=involvedObject.name={name},involvedObject.kind=GptOssDeployment",
    )
    return sorted(items["items"], key=lambda e: e["metadata"]["creationTimestamp"])


def child(testbed: Testbed, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = testbed.kubectl(
        "-n", namespace, "get", kind, name, "-o", "json", "--show-managed-fields", check=False
    )
    return json.loads(result.stdout) if result.returncode == 0 else None


def apply_all(testbed: Testbed, namespace: str, objects: list[dict[str, Any]]) -> None:
    """Apply many GptOssDeployments in one kubectl call."""
    testbed.apply(namespace, {"apiVersion": "v1", "kind": "List", "items": objects})


def ready_count(testbed: Testbed, namespace: str) -> int:
    """How many GptOssDeployments in `namespace` have Ready=True."""
    items = testbed.get("-n", namespace, "gptossdeployments")["items"]
    return sum(condition(i, "Ready").get("status") == "True" for i in items)
