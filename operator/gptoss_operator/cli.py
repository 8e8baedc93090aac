"""The `gptoss-operator` command: crd, render, docs and run."""

from __future__ import annotations

import argparse
import importlib
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


def _render_one(doc: object) -> list[dict[str, Any]]:
    from gptoss_operator.render import render_children
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
    return render_children(name, namespace, parse_spec(spec))


def _render(args: argparse.Namespace) -> int:
    """Exit 0 with the manifests, or 2 with one line naming the problem: never a traceback."""
    from gptoss_operator.validation import SpecError

    children: list[dict[str, Any]] = []
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        for doc in yaml.safe_load_all(text):
            if doc is not None:
                children += _render_one(doc)
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
    sys.stdout.write(yaml.safe_dump_all(children, sort_keys=False, width=100))
    return 0


def _run(args: argparse.Namespace) -> int:
    # Imported lazily: Kopf and the Kubernetes client are only needed by the operator itself.
    operator_main = importlib.import_module("gptoss_operator.operator_main")
    return int(operator_main.run(args) or 0)


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
    render.set_defaults(func=_render)
    docs = sub.add_parser("docs", help="write docs/defaults.md and docs/api-reference.md")
    docs.add_argument("--out", default="docs", help="output directory (default: docs)")
    docs.set_defaults(func=_docs)
    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "-n", "--namespace", action="append", default=[], help="namespace to watch (repeatable)"
    )
    run.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument(
        "--standalone",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run without peering (default: on)",
    )
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.add_argument(
        "--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    run.set_defaults(func=_run)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result
