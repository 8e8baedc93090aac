"""Generate operator/gptoss_operator/api/kube_schemas.json: the Kubernetes types the spec passes
through (affinity, tolerations), trimmed from the pinned Kubernetes release's OpenAPI v3 document.

    kubectl get --raw /openapi/v3/api/v1 | python tools/kube/schemagen.py -

`make kube-schemas` does that against the test bed (its apiserver is K8S_VERSION of
tests/testbed/versions.env). The served document is the source, not the repository's
api/openapi-spec copy: the apiserver adds the enums (toleration operators, effects...) that the
checked-in copy lacks. The drift test (tests/e2e/test_kube_schemas.py) trims the running
apiserver's document again and compares it with the committed file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "operator" / "gptoss_operator" / "api" / "kube_schemas.json"
VERSIONS = ROOT / "tests" / "testbed" / "versions.env"
# The pass-through fields of the spec, by their Kubernetes type.
ROOTS = {"Affinity": "io.k8s.api.core.v1.Affinity", "Toleration": "io.k8s.api.core.v1.Toleration"}
# Structural-schema keywords kept; defaults and list/map-type markers are the pod's business.
KEEP = {"type", "description", "properties", "items", "required", "enum", "additionalProperties"}


def k8s_version() -> str:
    for line in VERSIONS.read_text().splitlines():
        if line.startswith("K8S_VERSION="):
            return line.split("=", 1)[1].strip()
    raise LookupError(f"no K8S_VERSION in {VERSIONS}")


def _inline(node: Any, schemas: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(n, schemas) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref") or (node.get("allOf") or [{}])[0].get("$ref")
    if ref:
        target = schemas[ref.rsplit("/", 1)[-1]]
        extra = {k: v for k, v in node.items() if k not in ("$ref", "allOf")}
        node = {**target, **extra}
    out = {}
    for key, value in node.items():
        if key not in KEEP:
            continue
        if key == "properties":
            out[key] = {name: _inline(sub, schemas) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _inline(value, schemas)
        elif key == "description":
            out[key] = " ".join(value.split())
        else:
            out[key] = value
    return out


def trim(openapi: dict[str, Any], version: str) -> dict[str, Any]:
    """The pass-through types of `openapi` (an /openapi/v3/api/v1 document), refs inlined."""
    schemas = openapi["components"]["schemas"]
    types = {name: _inline(schemas[full], schemas) for name, full in ROOTS.items()}
    return {"kubernetesVersion": version, "types": types}


def render(openapi: dict[str, Any], version: str) -> str:
    return json.dumps(trim(openapi, version), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    source = sys.stdin.read() if sys.argv[1:] == ["-"] else Path(sys.argv[1]).read_text()
    OUT.write_text(render(json.loads(source), k8s_version()))
    print(OUT)
