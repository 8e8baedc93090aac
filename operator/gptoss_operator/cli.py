"""The `gptoss-operator` command: crd, render, docs and run."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from gptoss_operator.api import GROUP, KIND, VERSION


def _crd(args: argparse.Namespace) -> int:
    from gptoss_operator.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0


def _docs(args: argparse.Namespace) -> int:
    from gptoss_operator.docs import write_docs

    for path in write_docs(Path(args.out)):
        print(path)
    return 0


def _render_one(doc: object, args: argparse.Namespace) -> list[dict[str, Any]]:
    from gptoss_operator.render import render_children
    from gptoss_operator.settings import parse_gpu_node_labels
    from gptoss_operator.validation import parse_spec

    if not isinstance(doc, dict):
        raise ValueError(f"expected a {KIND} object, got a YAML {type(doc).__name__}")
    if doc.get("kind") != KIND or doc.get("apiVersion") != f"{GROUP}/{VERSION}":
        raise ValueError(f"expected kind {KIND} apiVersion {GROUP}/{VERSION}")
    meta = doc.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("metadata.name is required (a string)")
    namespace = meta.get("namespace", "default")
    if not isinstance(namespace, str):
        raise ValueError("metadata.namespace must be a string")
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict):
        raise ValueError("spec must be an object")
    labels = parse_gpu_node_labels(args.gpu_node_labels)
    return render_children(name, namespace, parse_spec(spec), gpu_node_labels=labels)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the middleware module in its ConfigMap) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def _render(args: argparse.Namespace) -> int:
    """Exit 0 with the manifests, or 2 with one line naming the problem: never a traceback."""
    from gptoss_operator.validation import SpecError

    children: list[dict[str, Any]] = []
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        for doc in yaml.safe_load_all(text):
            if doc is not None:
                children += _render_one(doc, args)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    except yaml.YAMLError as exc:
        print(f"error: {args.file}: invalid YAML: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except (SpecError, ValueError) as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 2
    if not children:
        print(f"error: {args.file}: no {KIND} in the file", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.dump_all(children, Dumper=_BlockDumper, sort_keys=False, width=100))
    return 0


def _run(args: argparse.Namespace) -> int:
    # Imported lazily: Kopf is only needed by the operator itself. Kopf imports the `kubernetes`
    # package whenever it is installed (a dev environment has it for the tests), for types this
    # operator never hands it; kept out, the process is the image's, ~15 MiB smaller.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    operator_main = importlib.import_module("gptoss_operator.operator_main")
    return int(operator_main.run(args) or 0)


def _gpu_node_labels_arg(p: argparse.ArgumentParser) -> None:
    from gptoss_operator.settings import GPU_NODE_LABELS_ENV

    p.add_argument(
        "--gpu-node-labels",
        default=os.environ.get(GPU_NODE_LABELS_ENV, ""),
        metavar="JSON",
        help="node labels of each GPU profile, replacing GPU feature discovery's "
        "nvidia.com/gpu.product for the profiles given, e.g. "
        '\'{"L4": {"cloud.google.com/gke-accelerator": ["nvidia-l4"]}}\' '
        f"(default: ${GPU_NODE_LABELS_ENV})",
    )


def parser() -> argparse.ArgumentParser:
    """The argument parser of `gptoss-operator`."""
    p = argparse.ArgumentParser(
        prog="gptoss-operator", description="Serve OpenAI gpt-oss models on vLLM in Kubernetes."
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("crd", help="print the CustomResourceDefinition YAML").set_defaults(func=_crd)
    render = sub.add_parser(
        "render", help="print the manifests of a GptOssDeployment file (no cluster needed)"
    )
    render.add_argument("-f", "--file", required=True, help="GptOssDeployment YAML, - for stdin")
    _gpu_node_labels_arg(render)
    render.set_defaults(func=_render)
    docs = sub.add_parser("docs", help="write docs/defaults.md and docs/api-reference.md")
    docs.add_argument("--out", default="docs", help="output directory (default: docs)")
    docs.set_defaults(func=_docs)
    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="namespace to watch (repeatable; default: every namespace)",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="of several replicas, only the holder of a coordination.k8s.io Lease writes "
        "(the chart turns it on; off, every running operator writes)",
    )
    run.add_argument(
        "--lease",
        default=f"{os.environ.get('POD_NAMESPACE') or 'default'}/gptoss-operator",
        metavar="NAMESPACE/NAME",
        help="the Lease of --leader-elect (default: $POD_NAMESPACE/gptoss-operator)",
    )
    run.add_argument(
        "--resync-seconds",
        type=float,
        default=300.0,
        help="re-list every watched kind this often, to drop objects deleted while a watch "
        "was away and to catch a stuck watch (default: 300; also done when the apiserver "
        "comes back after an outage)",
    )
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.add_argument(
        "--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve the operator's Prometheus metrics at /metrics on this port (Kopf's liveness "
        "server answers one path only, so metrics have their own; default: 0, not served)",
    )
    run.add_argument(
        "--metrics-address",
        default="0.0.0.0",  # noqa: S104  (in a pod: the Service and Prometheus reach it)
        help="address of the metrics server (default: 0.0.0.0)",
    )
    _gpu_node_labels_arg(run)
    run.set_defaults(func=_run)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result
