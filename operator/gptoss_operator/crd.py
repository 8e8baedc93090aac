"""The CustomResourceDefinition, generated from the pydantic models.

Pydantic emits JSON Schema (`$ref`, nullable `anyOf`, titles); Kubernetes wants a structural
OpenAPI v3 schema. `structural()` converts one into the other; `crd()` adds names, subresources,
printer columns and the CEL rules from `cel`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from gptoss_operator.api import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAME,
    SINGULAR,
    VERSION,
    GptOssDeploymentSpec,
    GptOssDeploymentStatus,
)
from gptoss_operator.cel import RULES_BY_PATH

Schema = dict[str, Any]
_KEEP = {
    "type",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "maxProperties",
    "items",
    "properties",
    "additionalProperties",
    "required",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-validations",
}


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Inline a `$ref` (keeping the referrer's description/default) and drop nullability."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**_resolve(options[0], defs), **rest}
    return node


def _prune_default(value: Any, schema: Schema) -> Any:
    """Drop nulls, and object keys that only restate the nested schema's own default."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out = {}
        for key, item in value.items():
            sub = props.get(key, {})
            restated = "default" in sub and sub["default"] == item
            if item is None or restated or (item in ([], {}) and "default" not in sub):
                continue
            out[key] = _prune_default(item, sub)
        return out
    return value


def structural(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Convert one pydantic JSON Schema node to a Kubernetes structural schema node."""
    node = _resolve(node, defs)
    out: Schema = {}
    for key, value in node.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = structural(value, defs)
            elif value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            # `False` (extra="forbid") is implied by a structural schema and not allowed
            # next to `properties`.
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            # JSON Schema's numeric form; OpenAPI v3 (Kubernetes) wants a bound plus a boolean.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    if "default" in out:
        if out["default"] is None:
            del out["default"]
        else:
            out["default"] = _prune_default(out["default"], out)
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if "description" in out:
        # Attribute docstrings wrap lines; `kubectl explain` reflows text itself.
        out["description"] = " ".join(out["description"].split())
    first = [k for k in ("description", "type") if k in out]
    return {k: out[k] for k in first + sorted(set(out) - set(first))}


def _attach_rules(schema: Schema) -> None:
    for path, rules in RULES_BY_PATH.items():
        node = schema
        for name in path:
            node = node["properties"][name]
        rule_fn: Callable[[], list[dict[str, Any]]] = rules
        node["x-kubernetes-validations"] = rule_fn()


def _model_schema(model: type[GptOssDeploymentSpec] | type[GptOssDeploymentStatus]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural(raw, raw.get("$defs", {}))


def openapi_schema() -> Schema:
    """The openAPIV3Schema of the GptOssDeployment kind."""
    spec = _model_schema(GptOssDeploymentSpec)
    _attach_rules(spec)
    status = _model_schema(GptOssDeploymentStatus)
    return {
        "type": "object",
        "description": "GptOssDeployment serves OpenAI gpt-oss-20b or gpt-oss-120b on vLLM "
        "behind an OpenAI-compatible Service.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def _column(name: str, path: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "jsonPath": path, **extra}


PRINTER_COLUMNS = [
    _column("Model", ".spec.model.name"),
    _column("Accelerator", ".spec.accelerator.profile"),
    _column("TP", ".status.tensorParallelSize", "integer"),
    _column("Ready", ".status.ready"),
    _column("Phase", ".status.phase"),
    _column("Reason", ".status.reason"),
    _column("Weights", ".status.weights.progress"),
    _column("Age", ".metadata.creationTimestamp", "date"),
    _column("Endpoint", ".status.endpoint", priority=1),
    _column("ETA", ".status.weights.estimatedCompletionTime", priority=1),
]


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "gptoss-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": [SHORT_NAME],
                "categories": [SHORT_NAME],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML document committed in manifests/crds/."""
    header = "# Generated by `gptoss-operator crd` from the pydantic models. Do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)
