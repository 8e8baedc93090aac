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


def _render_one(doc: dict[str, Any]) -> list[dict[str, Any]]:
    from gptoss_operator.render import render_children
    from gptoss_operator.validation import parse_spec

    if doc.get("kind") != KIND or doc.get("apiVersion") != f"{GROUP}/{VERSION}":
        raise ValueError(f"expected kind {KIND} apiVersion {GROUP}/{VERSION}")
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise ValueError("metadata.name is required")
    spec = parse_spec(doc.get("spec") or {})
    return render_children(name, meta.get("namespace", "default"), spec)


def _render(args: argparse.Namespace) -> int:
    from gptoss_operator.validation import SpecError

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    children: list[dict[str, Any]] = []
    try:
        for doc in yaml.safe_load_all(text):
            if doc:
                children += _render_one(doc)
    except (SpecError, ValueError, yaml.YAMLError) as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 1
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
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="namespace to watch (repeatable; default: every namespace)",
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
