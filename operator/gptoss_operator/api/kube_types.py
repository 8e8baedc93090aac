"""Kubernetes types the spec passes through to the pod (affinity, tolerations), with their real
schema: the CRD embeds it (so the apiserver refuses an unknown key or a wrong type naming the
field) and `check` enforces the same subset in Python (the CLI and the operator's second check).

The schemas are `kube_schemas.json`, trimmed from the OpenAPI document of the Kubernetes release
the test bed pins (tools/kube/schemagen.py; tests/e2e/test_kube_schemas.py checks the copy).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema

Schema = dict[str, Any]
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@cache
def schemas() -> dict[str, Any]:
    """The committed kube_schemas.json: {"kubernetesVersion": ..., "types": {name: schema}}."""
    text = resources.files(__package__).joinpath("kube_schemas.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schema(name: str) -> Schema:
    """The structural schema of one pass-through type (Affinity, Toleration)."""
    found: Schema = schemas()["types"][name]
    return found


def _where(path: str) -> str:
    return f"{path}: " if path else ""


def check(value: Any, node: Schema, path: str = "") -> None:
    """Raise ValueError naming the sub-field when `value` does not match the structural `node`."""
    expected = node.get("type")
    if expected is not None:
        ok = isinstance(value, _TYPES[expected])
        # bool is an int in Python; JSON keeps them apart, and so does the apiserver.
        if isinstance(value, bool) and expected != "boolean":
            ok = False
        if not ok:
            raise ValueError(f"{_where(path)}expected {expected}, got {type(value).__name__}")
    if "enum" in node and value not in node["enum"]:
        raise ValueError(f"{_where(path)}must be one of {', '.join(map(str, node['enum']))}")
    if isinstance(value, dict):
        props = node.get("properties")
        for key in node.get("required", []):
            if key not in value:
                raise ValueError(f"{_where(path)}{key} is required")
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if props is not None:
                if key not in props:
                    raise ValueError(f"{sub}: unknown field")
                check(item, props[key], sub)
            elif isinstance(node.get("additionalProperties"), dict):
                check(item, node["additionalProperties"], sub)
    if isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            check(item, node["items"], f"{path}[{i}]")


def _checked(name: str) -> AfterValidator:
    def validate(value: dict[str, Any]) -> dict[str, Any]:
        check(value, schema(name))
        return value

    return AfterValidator(validate)


Affinity = Annotated[dict[str, Any], _checked("Affinity"), WithJsonSchema(schema("Affinity"))]
"""A core/v1 Affinity, passed to the pod (the GPU product rule is ANDed in)."""

Toleration = Annotated[dict[str, Any], _checked("Toleration"), WithJsonSchema(schema("Toleration"))]
"""A core/v1 Toleration, passed to the pod."""
