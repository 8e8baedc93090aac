"""Generate the chart's derived files, and the raw install manifest, from their one source each.

    values.yaml comments  ->  values.schema.json, README.md (templates/README.md.j2, jinja2)
    `gptoss-operator crd` ->  templates/crd-gptossdeployments.yaml (+ crds.enabled / crds.keep)
    helm template         ->  manifests/install.yaml (the chart with its defaults, namespaced)

Run it with `make generate`; tests/unit/test_chart_generated.py fails when a file drifts.

values.yaml convention: the comment block right above a key is its description (a blank line
ends a block, so a file header is not taken for a key's doc); a `# @schema {...}` line in that
block adds JSON-schema keywords the default cannot tell. A `properties` hint replaces the
inference from the default's children. Objects reject unknown keys unless a hint says otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "gptoss-operator"
VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
README = CHART / "README.md"
CRD_TEMPLATE = CHART / "templates" / "crd-gptossdeployments.yaml"
INSTALL = ROOT / "manifests" / "install.yaml"
INSTALL_NAMESPACE = "gptoss-system"
RELEASE = "gptoss-operator"

# Text pages (the README) are jinja2 templates; Kubernetes objects stay Python dicts and Helm.
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=False,  # noqa: S701  (Markdown, not HTML)
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Shared definitions the `@schema` hints point at with $ref.
DEFS: dict[str, Any] = {
    "quantities": {
        "type": "object",
        "properties": {
            name: {"type": ["string", "number"]} for name in ("cpu", "memory", "ephemeral-storage")
        },
        "additionalProperties": False,
    },
    "deployment": {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$",
                "maxLength": 42,
                "description": "Name of the GptOssDeployment.",
            },
            "namespace": {
                "type": "string",
                "description": "Namespace of the GptOssDeployment (default: the release's).",
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "spec": {
                "type": "object",
                "description": "GptOssDeployment spec: the CRD's schema validates it on apply.",
            },
        },
        "required": ["name", "spec"],
        "additionalProperties": False,
    },
}

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_-]+):(?:\s|$)")
_HINT = "@schema "


class ValuesDocError(Exception):
    """values.yaml breaks the comment convention (an undocumented key, a bad hint)."""


# --- values.yaml comments ----------------------------------------------------------------------
def parse_comments(text: str) -> dict[tuple[str, ...], tuple[str, dict[str, Any]]]:
    """Map each key path of values.yaml to (description, schema hint) from its comment block."""
    docs: dict[tuple[str, ...], tuple[str, dict[str, Any]]] = {}
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    hint: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped[1:].removeprefix(" ")
            if body.startswith(_HINT):
                try:
                    hint.update(json.loads(body[len(_HINT) :]))
                except json.JSONDecodeError as error:
                    raise ValuesDocError(f"values.yaml:{number}: bad @schema: {error}") from None
            else:
                lines.append(body)
            continue
        match = _KEY.match(line)
        if match:
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match["key"]))
            docs[tuple(k for _, k in stack)] = (_paragraphs(lines), hint)
        lines, hint = [], {}
    return docs


def _paragraphs(lines: list[str]) -> str:
    """Comment lines as text: lines joined with spaces, an empty comment line starts a paragraph."""
    paragraphs = " ".join(line if line else "\n\n" for line in lines)
    return re.sub(r" ?\n\n ?", "\n\n", paragraphs).strip()


# --- values.schema.json ------------------------------------------------------------------------
def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise ValuesDocError(f"no JSON type for {value!r}")


def _node(path: tuple[str, ...], value: Any, docs: dict[Any, Any]) -> dict[str, Any]:
    if path not in docs or not docs[path][0]:
        raise ValuesDocError(f"values.yaml: {'.'.join(path)} has no description comment")
    description, hint = docs[path]
    node: dict[str, Any] = {"type": _type_of(value), "description": description}
    if isinstance(value, dict):
        if "properties" not in hint and "additionalProperties" not in hint:
            node["properties"] = {k: _node((*path, k), v, docs) for k, v in value.items()}
        node["additionalProperties"] = False
    node.update(hint)
    node["default"] = value
    return node


def values_schema(values_text: str) -> dict[str, Any]:
    """The JSON schema of values.yaml: types from the defaults, the rest from the comments."""
    docs = parse_comments(values_text)
    values = yaml.safe_load(values_text)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Values of the gptoss-operator chart",
        "type": "object",
        "properties": {k: _node((k,), v, docs) for k, v in values.items()},
        "additionalProperties": False,
        "$defs": DEFS,
    }


def schema_json(values_text: str) -> str:
    return json.dumps(values_schema(values_text), indent=2) + "\n"


# --- README.md ---------------------------------------------------------------------------------


def _walk_docs(path: tuple[str, ...], schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [(".".join(path), schema)]
    for key, child in schema.get("properties", {}).items() if "default" in schema else ():
        if "description" in child and "default" in child:
            out += _walk_docs((*path, key), child)
    return out


def _type_label(node: dict[str, Any]) -> str:
    kind = node.get("type", "object")
    if kind == "array" and "type" in node.get("items", {}):
        return f"array of {node['items']['type']}"
    if "enum" in node:
        return " \\| ".join(json.dumps(e) for e in node["enum"])
    return str(kind)


def readme(values_text: str) -> str:
    """The chart README: a short guide, then every value with its type, default and meaning."""
    schema = values_schema(values_text)
    values = []
    for key, top in schema["properties"].items():
        for name, node in _walk_docs((key,), top):
            default = yaml.safe_dump(node["default"], default_flow_style=False, sort_keys=False)
            values.append(
                {
                    "name": name,
                    "type": _type_label(node),
                    "default": default.removesuffix("...\n").rstrip("\n"),
                    "description": node["description"],
                }
            )
    return TEMPLATES.get_template("README.md.j2").render(
        release=RELEASE, namespace=INSTALL_NAMESPACE, values=values
    )


# --- CRD template ------------------------------------------------------------------------------
def crd_source() -> str:
    """The CRD YAML exactly as `gptoss-operator crd` prints it (manifests/crds/ has the same)."""
    return subprocess.run(
        [sys.executable, "-m", "gptoss_operator", "crd"], check=True, capture_output=True, text=True
    ).stdout


def crd_template(crd_yaml: str) -> str:
    """The chart's CRD template: the generated spec verbatim, Helm metadata and switches around."""
    crd = yaml.safe_load(crd_yaml)
    if "{{" in crd_yaml:
        raise ValueError("the CRD contains '{{': escape it before templating")
    spec = crd_yaml[crd_yaml.index("\nspec:\n") + 1 :]
    labels = "".join(
        f"    {k}: {json.dumps(v)}\n"
        for k, v in crd["metadata"].get("labels", {}).items()
        if k != "app.kubernetes.io/name"  # the chart's labels carry it
    )
    return (
        "{{- if .Values.crds.enabled }}\n"
        "# Generated by tools/chart/chartgen.py from `gptoss-operator crd`: do not edit.\n"
        f"apiVersion: {crd['apiVersion']}\n"
        f"kind: {crd['kind']}\n"
        "metadata:\n"
        f"  name: {crd['metadata']['name']}\n"
        "  {{- if .Values.crds.keep }}\n"
        "  annotations:\n"
        "    helm.sh/resource-policy: keep\n"
        "  {{- end }}\n"
        "  labels:\n"
        f"{labels}"
        '    {{- include "gptoss-operator.labels" . | nindent 4 }}\n'
        f"{spec}"
        "{{- end }}\n"
    )


# --- manifests/install.yaml --------------------------------------------------------------------
def helm_binary() -> Path:
    """helm from $HELM, else the test bed's cached build (build.sh is a no-op when cached)."""
    if os.environ.get("HELM"):
        return Path(os.environ["HELM"])
    out = subprocess.run(
        ["bash", str(ROOT / "tests" / "testbed" / "build.sh"), "helm"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    dirs = dict(line.split("=", 1) for line in out.split())
    return Path(dirs["HELM_BIN"]) / "helm"


INSTALL_HEAD = f"""\
# Generated by tools/chart/chartgen.py with `helm template` from charts/gptoss-operator and its
# default values: do not edit, run `make generate`. Install with
#   kubectl apply --server-side -f manifests/install.yaml
---
apiVersion: v1
kind: Namespace
metadata:
  name: {INSTALL_NAMESPACE}
  labels:
    app.kubernetes.io/name: gptoss-operator
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
"""


def install_manifest(helm: Path) -> str:
    """The chart with its defaults as plain manifests, after a restricted Namespace."""
    rendered = subprocess.run(
        [str(helm), "template", RELEASE, str(CHART), "--namespace", INSTALL_NAMESPACE],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "HELM_NAMESPACE": INSTALL_NAMESPACE},
    ).stdout
    # NOTES.txt is not rendered by `helm template`; the chart path is the only machine detail.
    return INSTALL_HEAD + rendered


# --- entry point -------------------------------------------------------------------------------
def chart_outputs() -> dict[Path, str]:
    """The chart's generated files and their expected content (install.yaml is rendered after)."""
    values_text = VALUES.read_text()
    return {
        SCHEMA: schema_json(values_text),
        README: readme(values_text),
        CRD_TEMPLATE: crd_template(crd_source()),
    }


def main() -> int:
    # The chart's files first: install.yaml is rendered from the chart as it is on disk.
    for path, content in chart_outputs().items():
        path.write_text(content)
        print(path.relative_to(ROOT))
    INSTALL.write_text(install_manifest(helm_binary()))
    print(INSTALL.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
